//! A `[[service]]` program as a service handler: each call runs the program with the request
//! on stdin and answers what it writes on stdout.
//!
//! Bounds, and what each call is answered when one is hit:
//! - at most `max_concurrent` runs at once; one more is answered [`CallFailure::Busy`] at once,
//!   so its caller fails over to another provider rather than queueing here;
//! - a run longer than `timeout` is killed (SIGKILL, then reaped) and answered
//!   [`CallFailure::TimedOut`]; the program's own children are not killed, so a program
//!   should not leave any behind;
//! - stdout over [`MAX_RESPONSE_SIZE`] kills the program and is answered
//!   [`CallFailure::ResponseTooLarge`] (nothing past the limit is read);
//! - a non-zero exit, or a program that cannot be started, is answered
//!   [`CallFailure::Handler`] with the exit status; the program's stderr goes to the node's log
//!   only (its first [`MAX_STDERR_LOGGED`] bytes; the rest is read and dropped so the program
//!   never blocks on it), since it may say more than a caller should see.
//!
//! The program inherits the node's environment and working directory. No shell is involved:
//! `exec = ["sh", "-c", "..."]` asks for one explicitly.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
    sync::Semaphore,
};
use tracing::{debug, warn};

use super::{CallFailure, Handler, MAX_RESPONSE_SIZE, ServiceConfig};

/// The most of a program's stderr kept for the log, per run.
pub const MAX_STDERR_LOGGED: usize = 4096;

/// How much longer than the program's own timeout the server waits before it aborts the
/// handler (which kills the program too): the handler's own time-out kills and reaps first,
/// and this margin is only for a reap that hangs.
pub(crate) const KILL_MARGIN: Duration = Duration::from_secs(2);

/// A `[[service]]` ready to run. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Exec {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

/// Why reading the program's stdout stopped early.
enum ReadError {
    TooLarge,
    Io(std::io::Error),
}

impl Exec {
    /// The runner of `service` (validated by the config).
    pub(crate) fn new(service: &ServiceConfig) -> Self {
        let (program, args) = service.exec.split_first().map_or_else(
            || (PathBuf::new(), Vec::new()),
            |(program, args)| (PathBuf::from(program), args.to_vec()),
        );
        Self {
            inner: Arc::new(Inner {
                name: service.name.clone(),
                program,
                args,
                timeout: service.timeout,
                slots: Arc::new(Semaphore::new(service.max_concurrent.max(1))),
            }),
        }
    }

    /// This runner as a service handler.
    pub(crate) fn handler(&self) -> Handler {
        let exec = self.clone();
        Handler::with_failures(move |request| {
            let exec = exec.clone();
            async move { exec.run(request).await }
        })
    }

    /// Runs the program once on `request`.
    pub(crate) async fn run(&self, request: Vec<u8>) -> Result<Vec<u8>, CallFailure> {
        let inner = &self.inner;
        let Ok(_slot) = inner.slots.clone().try_acquire_owned() else {
            debug!(service = %inner.name, "busy: every run slot is taken");
            return Err(CallFailure::Busy);
        };
        let mut child = Command::new(&inner.program)
            .args(&inner.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Whatever ends this future early (the server aborting it) kills the program too.
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                warn!(service = %inner.name, program = %inner.program.display(), "cannot start the program: {err}");
                CallFailure::Handler(format!("the service's program cannot start: {err}"))
            })?;
        let outcome = tokio::time::timeout(inner.timeout, exchange(&mut child, request)).await;
        match outcome {
            Ok(Ok((stdout, stderr, status))) if status.success() => {
                if !stderr.is_empty() {
                    debug!(service = %inner.name, stderr = %lossy(&stderr), "the program wrote on stderr");
                }
                Ok(stdout)
            }
            Ok(Ok((_, stderr, status))) => {
                warn!(service = %inner.name, %status, stderr = %lossy(&stderr), "the program failed");
                Err(CallFailure::Handler(format!(
                    "the service's program failed ({status})"
                )))
            }
            Ok(Err(ReadError::TooLarge)) => {
                kill(&mut child, &inner.name).await;
                warn!(service = %inner.name, "the program's output is over {MAX_RESPONSE_SIZE} bytes; killed");
                Err(CallFailure::ResponseTooLarge)
            }
            Ok(Err(ReadError::Io(err))) => {
                kill(&mut child, &inner.name).await;
                warn!(service = %inner.name, "talking to the program failed: {err}");
                Err(CallFailure::Handler(
                    "talking to the service's program failed".into(),
                ))
            }
            Err(_) => {
                kill(&mut child, &inner.name).await;
                warn!(service = %inner.name, timeout = ?inner.timeout, "the program ran past its timeout; killed");
                Err(CallFailure::TimedOut)
            }
        }
    }
}

/// Feeds the request, reads stdout (bounded) and stderr (bounded, the rest drained) at once,
/// so a program that writes before it has read everything never blocks on a full pipe, then
/// waits for the exit.
async fn exchange(
    child: &mut Child,
    request: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>, std::process::ExitStatus), ReadError> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A program may answer without reading its input: a closed pipe is not an error.
            let _ = stdin.write_all(&request).await;
            // Dropped here: the program sees the end of its input.
        }
        Ok::<(), ReadError>(())
    };
    let read_out = async move {
        match stdout {
            Some(stdout) => read_bounded(stdout).await,
            None => Ok(Vec::new()),
        }
    };
    let read_err = async move {
        match stderr {
            Some(stderr) => Ok(read_drained(stderr).await),
            None => Ok(Vec::new()),
        }
    };
    let ((), stdout, stderr) = tokio::try_join!(write, read_out, read_err)?;
    let status = child.wait().await.map_err(ReadError::Io)?;
    Ok((stdout, stderr, status))
}

/// All of `reader` up to [`MAX_RESPONSE_SIZE`] bytes; one byte more is [`ReadError::TooLarge`].
async fn read_bounded(reader: impl AsyncRead + Unpin) -> Result<Vec<u8>, ReadError> {
    let limit = MAX_RESPONSE_SIZE as u64 + 1;
    let mut out = Vec::new();
    reader
        .take(limit)
        .read_to_end(&mut out)
        .await
        .map_err(ReadError::Io)?;
    if out.len() > MAX_RESPONSE_SIZE {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

/// The first [`MAX_STDERR_LOGGED`] bytes of `reader`; the rest is read to the end and dropped.
async fn read_drained(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut scratch = [0u8; 4096];
    loop {
        match reader.read(&mut scratch).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_STDERR_LOGGED - kept.len();
                kept.extend_from_slice(&scratch[..n.min(room)]);
            }
        }
    }
}

/// Kills the program and reaps it, so no zombie is left.
async fn kill(child: &mut Child, name: &str) {
    if let Err(err) = child.kill().await {
        warn!(service = %name, "cannot kill the program: {err}");
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Exec, MAX_RESPONSE_SIZE};
    use crate::service::{CallFailure, ServiceConfig};

    fn exec(program: &[&str], timeout: Duration, max_concurrent: usize) -> Exec {
        let mut config = ServiceConfig::new("test", program.iter().copied());
        config.timeout = timeout;
        config.max_concurrent = max_concurrent;
        Exec::new(&config)
    }

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn cat_echoes_the_request_even_past_a_pipe_buffer() {
        let cat = exec(&["cat"], LONG, 1);
        assert_eq!(cat.run(b"hello".to_vec()).await, Ok(b"hello".to_vec()));
        // Larger than a pipe's buffer both ways: input and output must flow at once.
        let big = b"weft ".repeat(120_000);
        assert_eq!(cat.run(big.clone()).await, Ok(big));
        assert_eq!(cat.run(Vec::new()).await, Ok(Vec::new()));
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_a_failure_naming_the_status_not_the_stderr() {
        let failing = exec(&["sh", "-c", "echo secret >&2; exit 3"], LONG, 1);
        match failing.run(b"x".to_vec()).await {
            Err(CallFailure::Handler(message)) => {
                assert!(message.contains("exit status: 3"), "{message}");
                assert!(!message.contains("secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_is_a_failure() {
        let missing = exec(&["/nonexistent/weft-test-program"], LONG, 1);
        match missing.run(Vec::new()).await {
            Err(CallFailure::Handler(message)) => {
                assert!(message.contains("cannot start"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_run_past_its_timeout_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let stuck = exec(&["sh", "-c", &script], Duration::from_secs(1), 1);
        assert_eq!(stuck.run(Vec::new()).await, Err(CallFailure::TimedOut));
        let pid = std::fs::read_to_string(&pid_file).expect("the program started");
        // Killed and reaped: not even a zombie is left.
        let proc = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
        assert!(!proc.exists(), "{} still exists", proc.display());
    }

    #[tokio::test]
    async fn output_over_the_limit_is_refused_and_at_the_limit_answered() {
        let at = format!("head -c {MAX_RESPONSE_SIZE} /dev/zero");
        let at_limit = exec(&["sh", "-c", &at], LONG, 1);
        assert_eq!(
            at_limit.run(Vec::new()).await.map(|out| out.len()),
            Ok(MAX_RESPONSE_SIZE)
        );
        // A program that would write forever is stopped at the limit.
        let endless = exec(&["cat", "/dev/zero"], LONG, 1);
        assert_eq!(
            endless.run(Vec::new()).await,
            Err(CallFailure::ResponseTooLarge)
        );
    }

    #[tokio::test]
    async fn beyond_max_concurrent_a_call_is_told_busy() {
        let slow = exec(&["sleep", "30"], LONG, 1);
        let first = tokio::spawn({
            let slow = slow.clone();
            async move { slow.run(Vec::new()).await }
        });
        // The first run holds the only slot once it has started.
        while slow.inner.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(slow.run(Vec::new()).await, Err(CallFailure::Busy));
        // Aborting the run kills its program (kill_on_drop) and frees the slot.
        first.abort();
        let _ = first.await;
        assert_eq!(slow.inner.slots.available_permits(), 1);
    }
}
