// weft node status page.
//
// Polls the admin API of the node that served this page and renders what it answers.
// Everything that comes from the network (ids, names, addresses, event texts) is written
// with textContent, never as markup. The page is served under a strict
// Content-Security-Policy: no inline code or style, no outside resources.
'use strict';

(function () {
  const TOKEN_KEY = 'weft-admin-token';
  const OVERVIEW_EVERY_MS = 1000;
  const TOPOLOGY_EVERY_MS = 2000;
  const UNAUTHORIZED_EVERY_MS = 5000;
  const REQUEST_TIMEOUT_MS = 4000;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // The svg's viewBox; the layout runs in the same units and is fitted into it when drawn.
  const VIEW_W = 800;
  const VIEW_H = 460;
  const MARGIN_X = 50;
  const MARGIN_TOP = 30;    // a circle's radius
  const MARGIN_BOTTOM = 50; // a circle's radius and its label below

  const state = {
    token: null,
    selectedTopic: undefined, // hex of the topic shown, null when none: undefined until the first overview
    topicKey: '',          // the topic list the <select> was last built from
    layoutByTopic: new Map(), // topic -> Map(id -> {x, y}), so re-polls do not jump
    overviewTimer: null,
    overviewInFlight: false,
    topologyTimer: null,
    topologyGeneration: 0, // bumps on topic change so a late answer for the old topic is dropped
    rendered: new Map(),   // section -> last data key, to skip rebuilding unchanged tables
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- token

  // The token arrives once in the address (#token=...), then lives in sessionStorage so a
  // reload works; it is removed from the address so it does not linger in history or on screen.
  function readToken() {
    const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
    if (fromHash) {
      try { sessionStorage.setItem(TOKEN_KEY, fromHash); } catch (e) { /* storage off: keep it in memory */ }
      history.replaceState(null, '', location.pathname + location.search);
      return fromHash;
    }
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- fetching

  // One authenticated GET. Answers {status, body}; throws only on network failure/timeout.
  async function getJson(path) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(path, {
        headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' },
        cache: 'no-store',
        signal: abort.signal,
      });
      const body = res.ok ? await res.json() : null;
      return { status: res.status, body };
    } finally {
      clearTimeout(timer);
    }
  }

  function setPageState(value) {
    document.body.dataset.state = value;
    const conn = $('conn');
    conn.className = 'conn-state ' + value;
    conn.textContent = {
      ok: 'live',
      error: 'disconnected — retrying',
      unauthorized: 'no access',
    }[value] || value;
    $('auth-message').hidden = value !== 'unauthorized';
  }

  // Polls are chained with setTimeout after each answer (never setInterval), so a slow node
  // never has two requests of the same kind in flight.
  async function pollOverview() {
    clearTimeout(state.overviewTimer);
    if (state.overviewInFlight) return; // its answer schedules the next poll
    state.overviewInFlight = true;
    let next = OVERVIEW_EVERY_MS;
    try {
      const { status, body } = await getJson('/v1/overview');
      if (status === 401) {
        setPageState('unauthorized');
        next = UNAUTHORIZED_EVERY_MS;
      } else if (status === 200 && body) {
        setPageState('ok');
        renderOverview(body);
      } else {
        setPageState('error');
      }
    } catch (e) {
      setPageState('error');
    }
    state.overviewInFlight = false;
    state.overviewTimer = setTimeout(pollOverview, next);
  }

  async function pollTopology() {
    clearTimeout(state.topologyTimer);
    const topic = state.selectedTopic;
    const generation = state.topologyGeneration;
    if (!topic) return; // nothing joined: the overview poll restarts us when a topic appears
    try {
      const { status, body } = await getJson('/v1/topology?topic=' + encodeURIComponent(topic));
      if (generation !== state.topologyGeneration) return; // topic changed meanwhile
      if (status === 200 && body) {
        renderTopology(topic, body);
      } else if (status === 404) {
        showTopologyMessage('this node has not joined that topic');
      } else if (status === 401) {
        setPageState('unauthorized');
      } else {
        markTopologyStale();
      }
    } catch (e) {
      if (generation !== state.topologyGeneration) return;
      markTopologyStale();
    }
    state.topologyTimer = setTimeout(pollTopology, TOPOLOGY_EVERY_MS);
  }

  // Switches the topology panel to another topic and asks for it at once (not after a timer:
  // a headless test browser must see the first drawing promptly).
  function selectTopic(topic) {
    if (topic === state.selectedTopic) return;
    state.selectedTopic = topic;
    state.topologyGeneration += 1;
    clearTimeout(state.topologyTimer);
    if (topic) {
      $('topology-message').hidden = true;
      pollTopology();
    } else {
      showTopologyMessage('no gossip topic joined');
    }
  }

  // ---------------------------------------------------------------- formatting

  const shortId = (id, n = 12) => (id ? String(id).slice(0, n) : '—');
  const topicLabel = (t) => t.name || shortId(t.topic, 12);
  const pad2 = (n) => String(n).padStart(2, '0');

  // 3723000 -> "1h 02m 03s"; 123000 -> "2m 03s"; 5000 -> "5s".
  function formatDuration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (h > 0) return h + 'h ' + pad2(m) + 'm ' + pad2(s) + 's';
    if (m > 0) return m + 'm ' + pad2(s) + 's';
    return s + 's';
  }

  // Event age relative to the node's own uptime clock (the browser clock may disagree).
  function formatAgo(ms) {
    if (ms < 60000) return (Math.max(0, ms) / 1000).toFixed(1) + ' s ago';
    return formatDuration(ms) + ' ago';
  }

  const formatRtt = (us) => (us === null || us === undefined ? '—' : (us / 1000).toFixed(2) + ' ms');

  function clockTime(date) {
    return pad2(date.getHours()) + ':' + pad2(date.getMinutes()) + ':' + pad2(date.getSeconds());
  }

  // ---------------------------------------------------------------- DOM helpers

  // el('td', {class: 'mono', title: id}, 'text' | node | [nodes]) — text is always textContent.
  function el(tag, attrs, content) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') node.className = v;
      else node.setAttribute(k, v);
    }
    appendContent(node, content);
    return node;
  }

  function appendContent(node, content) {
    if (content === undefined || content === null) return;
    if (Array.isArray(content)) content.forEach((c) => appendContent(node, c));
    else if (content instanceof Node) node.appendChild(content);
    else node.appendChild(document.createTextNode(String(content)));
  }

  // Only touches the DOM when the text changed, so a user's text selection (the ticket,
  // an id) survives the once-a-second refresh.
  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  // Rebuilds a section only when its data changed, for the same reason as setText.
  function renderSection(name, data, build) {
    const key = JSON.stringify(data);
    if (state.rendered.get(name) === key) return;
    state.rendered.set(name, key);
    build();
  }

  const idChip = (id) => el('span', { class: 'chip mono', title: id }, shortId(id));
  const emptyNote = (text) => el('p', { class: 'empty' }, text);

  function layerEnabled(status, name) {
    const layer = (status.layers || []).find((l) => l.name === name);
    return layer ? layer.enabled : true;
  }

  // ---------------------------------------------------------------- overview

  function renderOverview(o) {
    const status = o.status || {};
    renderHeader(status);
    renderNode(status);
    renderPeers(o.peers || []);
    renderGossip(status, o.gossip || []);
    renderRegistry(status, o.registry);
    renderSync(status, o.sync || []);
    renderEvents(status, o.events || []);
    updateTopicSelect(status, o.gossip || []);
  }

  function renderHeader(status) {
    setText($('short-id'), shortId(status.id));
    setText($('network'), status.network || '—');
    setText($('version'), status.version || '—');
    setText($('uptime'), formatDuration(status.uptime_ms || 0));
    setText($('updated'), 'updated ' + clockTime(new Date()));
    document.title = 'weft node ' + shortId(status.id);
  }

  function renderNode(status) {
    setText($('node-id'), status.id || '—');
    setText($('ticket'), status.ticket || '—');
    setText($('addresses'), (status.addresses || []).join('  ') || '—');
    setText($('relay'), status.relay || 'none');
    renderSection('layers', status.layers, () => {
      $('layers').replaceChildren(...(status.layers || []).map(layerChip));
    });
    renderSection('services', status.services, () => {
      const services = status.services || [];
      $('services').replaceChildren(...(services.length
        ? services.map((s) => el('span', { class: 'chip' }, s))
        : [el('span', { class: 'muted' }, 'none')]));
    });
  }

  function layerChip(layer) {
    let kind = 'off';
    if (layer.enabled) kind = layer.running ? 'running' : 'stopped';
    return el('span', { class: 'chip layer ' + kind, title: layer.name + ': ' + kind },
      [el('span', { class: 'dot' }), layer.name]);
  }

  function renderPeers(peers) {
    setText($('peer-count'), String(peers.length));
    renderSection('peers', peers, () => {
      if (!peers.length) {
        $('peers').replaceChildren(emptyNote('no peers connected'));
        return;
      }
      const rows = peers.map((p) => el('tr', null, [
        el('td', { class: 'mono', title: p.id }, shortId(p.id)),
        el('td', { class: 'mono addrs' }, peerAddresses(p)),
        el('td', { class: 'num' }, formatRtt(p.rtt_us)),
      ]));
      $('peers').replaceChildren(el('table', null, [
        el('thead', null, el('tr', null, [el('th', null, 'peer'), el('th', null, 'addresses'),
          el('th', { class: 'num' }, 'rtt')])),
        el('tbody', null, rows),
      ]));
    });
  }

  // One address per line; a peer reached only through a relay shows the relay.
  function peerAddresses(p) {
    const lines = (p.addresses || []).slice();
    if (p.relay) lines.push('relay ' + p.relay);
    if (!lines.length) return '—';
    return lines.map((a) => el('div', null, a));
  }

  function renderGossip(status, topics) {
    renderSection('gossip', [layerEnabled(status, 'gossip'), topics], () => {
      const box = $('gossip');
      if (!layerEnabled(status, 'gossip')) return box.replaceChildren(emptyNote('off'));
      if (!topics.length) return box.replaceChildren(emptyNote('no gossip topic joined'));
      box.replaceChildren(...topics.map((t) => el('div', { class: 'topic' }, [
        el('div', { class: 'topic-name', title: t.topic }, topicLabel(t)),
        viewRow('active', t.active || []),
        viewRow('passive', t.passive || []),
      ])));
    });
  }

  function viewRow(label, ids) {
    return el('div', { class: 'view-row' }, [
      el('span', { class: 'view-label' }, label + ' ' + ids.length),
      el('span', { class: 'chips' }, ids.length ? ids.map(idChip) : el('span', { class: 'muted' }, 'empty')),
    ]);
  }

  function renderRegistry(status, registry) {
    const on = layerEnabled(status, 'registry') && Boolean(registry);
    renderSection('registry', [on, registry], () => {
      const box = $('registry');
      if (!on) return box.replaceChildren(emptyNote('off'));
      const provided = registry.provided || [];
      const held = registry.held || [];
      const nameList = (label, items) => [
        el('h3', { class: 'sub' }, label),
        items.length
          ? el('ul', { class: 'names' }, items)
          : emptyNote('none'),
      ];
      box.replaceChildren(
        el('dl', { class: 'stats' }, [
          el('div', null, [el('dt', null, 'records held'), el('dd', null, String(registry.records_held))]),
          el('div', null, [el('dt', null, 'routing peers'), el('dd', null, String(registry.routing_peers))]),
          el('div', null, [el('dt', null, 'provided'), el('dd', null, String(provided.length))]),
        ]),
        ...nameList('provided', provided.map((n) => el('li', { class: 'mono', title: n }, n))),
        ...nameList('held', held.map((h) => el('li', { class: 'mono', title: h.name },
          `${h.name} · ${h.providers} provider${h.providers === 1 ? '' : 's'}`))),
      );
    });
  }

  function renderSync(status, topics) {
    const on = layerEnabled(status, 'sync');
    renderSection('sync', [on, topics], () => {
      const box = $('sync');
      if (!on) return box.replaceChildren(emptyNote('off'));
      if (!topics.length) return box.replaceChildren(emptyNote('no sync topic'));
      box.replaceChildren(...topics.map((t) => el('div', { class: 'topic' }, [
        el('div', { class: 'topic-name', title: t.topic }, [topicLabel(t),
          el('span', { class: 'muted' }, ' · ' + t.items + ' items')]),
        el('div', { class: 'sessions' }, (t.sessions || []).length
          ? t.sessions.map(sessionRow)
          : el('span', { class: 'muted' }, 'no sessions')),
      ])));
    });
  }

  function sessionRow(s) {
    return el('div', { class: 'session' }, [
      idChip(s.peer),
      el('span', { class: 'muted' }, s.initiator ? 'initiator' : 'responder'),
      el('span', { class: 'badge ' + (s.live ? 'live' : 'catching') }, s.live ? 'live' : 'catching up'),
    ]);
  }

  function renderEvents(status, events) {
    const now = status.uptime_ms || 0;
    const list = $('events');
    if (!events.length) return list.replaceChildren(el('li', { class: 'empty' }, 'no events yet'));
    // The node sends them oldest first; the newest matter most, so they go on top.
    list.replaceChildren(...events.slice().reverse().map((e) => el('li', null, [
      el('span', { class: 'when', title: 'at uptime ' + formatDuration(e.at_ms) }, formatAgo(now - e.at_ms)),
      el('span', { class: 'layer-tag ' + e.layer }, e.layer),
      el('span', { class: 'what' }, e.text),
    ])));
  }

  // ---------------------------------------------------------------- topic select

  // Rebuilt only when the topic list changes, so an open dropdown is not disturbed.
  function updateTopicSelect(status, topics) {
    const joined = layerEnabled(status, 'gossip') ? topics : [];
    const key = JSON.stringify(joined.map((t) => [t.topic, t.name]));
    const select = $('topic-select');
    if (key !== state.topicKey) {
      state.topicKey = key;
      select.replaceChildren(...joined.map((t) => el('option', { value: t.topic }, topicLabel(t))));
      select.disabled = joined.length === 0;
    }
    const stillThere = joined.some((t) => t.topic === state.selectedTopic);
    const wanted = stillThere ? state.selectedTopic : (joined[0] ? joined[0].topic : null);
    if (wanted) select.value = wanted;
    selectTopic(wanted);
  }

  // ---------------------------------------------------------------- topology

  function showTopologyMessage(text) {
    const svg = $('topology');
    svg.replaceChildren();
    svg.dataset.nodes = '0';
    svg.dataset.edges = '0';
    const msg = $('topology-message');
    msg.textContent = text;
    msg.hidden = false;
    setText($('topology-summary'), '');
  }

  function markTopologyStale() {
    setText($('topology-summary'), 'topology unavailable — retrying');
  }

  // Distinct undirected edges between drawn nodes: a→b and b→a are one line.
  function distinctEdges(nodes, edges) {
    const known = new Set(nodes.map((n) => n.id));
    const seen = new Map();
    for (const e of edges || []) {
      if (e.from === e.to || !known.has(e.from) || !known.has(e.to)) continue;
      const [a, b] = e.from < e.to ? [e.from, e.to] : [e.to, e.from];
      seen.set(a + '|' + b, { a, b });
    }
    return [...seen.values()];
  }

  function renderTopology(topic, t) {
    const nodes = t.nodes || [];
    const edges = distinctEdges(nodes, t.edges);
    if (!state.layoutByTopic.has(topic)) state.layoutByTopic.set(topic, new Map());
    const positions = state.layoutByTopic.get(topic);
    layout(positions, nodes, edges);
    drawGraph(nodes, edges, positions);
    $('topology-message').hidden = true;
    setText($('topology-summary'),
      nodes.length + ' nodes, ' + edges.length + ' edges, asked ' + t.asked +
      ', unanswered ' + t.unanswered + (t.truncated ? ' (truncated)' : ''));
  }

  function drawGraph(nodes, edges, positions) {
    const svg = $('topology');
    const fit = fitToView(nodes.map((n) => positions.get(n.id)));
    const at = (id) => fit(positions.get(id));
    const lines = edges.map(({ a, b }) => {
      const p = at(a);
      const q = at(b);
      return svgEl('line', { class: 'edge', x1: p.x, y1: p.y, x2: q.x, y2: q.y });
    });
    // Far nodes first so "me" and its neighbours are painted on top.
    const order = nodes.slice().sort((x, y) => (y.depth || 0) - (x.depth || 0));
    const crowded = nodes.length > 15; // smaller circles so a big overlay stays legible
    const circles = order.map((n) => nodeGroup(n, at(n.id), crowded));
    svg.replaceChildren(svgEl('g', { class: 'edges' }, lines), svgEl('g', { class: 'nodes' }, circles));
    // Test hooks: what was actually drawn.
    svg.dataset.nodes = String(nodes.length);
    svg.dataset.edges = String(edges.length);
  }

  function nodeGroup(n, p, crowded) {
    const kind = n.me ? 'me' : (n.depth <= 1 ? 'd1' : 'd2');
    const cls = 'node ' + kind + (n.answered ? '' : ' silent') + (crowded ? ' small' : '');
    const r = n.me ? (crowded ? 16 : 22) : (crowded ? 9 : 16);
    const g = svgEl('g', { class: cls, transform: 'translate(' + p.x.toFixed(1) + ' ' + p.y.toFixed(1) + ')' });
    const title = svgEl('title');
    title.textContent = n.id + '\ndepth ' + n.depth + (n.answered ? '' : ' · did not answer');
    g.append(title, svgEl('circle', { r }));
    if (n.me) g.append(svgText('me', { class: 'inner', y: 4 }));
    g.append(svgText(shortId(n.id, 8), { class: 'label', y: r + (crowded ? 11 : 14) }));
    return g;
  }

  function svgEl(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      node.setAttribute(k, typeof v === 'number' ? v.toFixed(1) : v);
    }
    if (children) node.append(...children);
    return node;
  }

  function svgText(text, attrs) {
    const node = svgEl('text', Object.assign({ 'text-anchor': 'middle' }, attrs));
    node.textContent = text;
    return node;
  }

  // ---------------------------------------------------------------- layout

  // FNV-1a of the id, as two numbers in [0, 1): a deterministic "random" start position.
  function hashPair(id) {
    let h = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) {
      h ^= id.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    const h2 = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    return [h / 4294967296, h2 / 4294967296];
  }

  // Force-directed layout (Fruchterman–Reingold with a pull to the centre), computed
  // synchronously for a fixed number of steps so it finishes without animation frames.
  // Known nodes start from where they were, so a re-poll only nudges the drawing.
  function layout(positions, nodes, edges) {
    const cx = VIEW_W / 2;
    const cy = VIEW_H / 2;
    const ids = new Set(nodes.map((n) => n.id));
    for (const id of [...positions.keys()]) if (!ids.has(id)) positions.delete(id);

    const fresh = placeNewNodes(positions, nodes, edges, cx, cy);
    const n = nodes.length;
    if (n === 0) return;
    const k = Math.min(110, Math.max(40, Math.sqrt((VIEW_W * VIEW_H) / n) * 0.45));
    // A first layout gets many steps and a high temperature; an update only settles newcomers.
    const allNew = fresh === n;
    const steps = allNew ? 500 : (fresh > 0 ? 200 : 40);
    let temp = allNew ? 80 : (fresh > 0 ? 30 : 2);
    const pts = nodes.map((node) => positions.get(node.id));
    const index = new Map(nodes.map((node, i) => [node.id, i]));
    const links = edges.map(({ a, b }) => [index.get(a), index.get(b)]);

    for (let step = 0; step < steps; step++) {
      const disp = pts.map(() => ({ x: 0, y: 0 }));
      repel(pts, disp, k);
      attract(pts, disp, links, k);
      for (let i = 0; i < n; i++) {
        disp[i].x += (cx - pts[i].x) * 0.02; // centring keeps separate pieces together
        disp[i].y += (cy - pts[i].y) * 0.04; // stronger vertically: the panel is wide
      }
      for (let i = 0; i < n; i++) move(pts[i], disp[i], temp);
      temp = Math.max(0.05, temp * 0.98);
    }
  }

  // Puts each node not yet placed next to an already placed neighbour (so it grows out of
  // the graph where it belongs), else at a hash-chosen spot; "me" starts at the centre.
  function placeNewNodes(positions, nodes, edges, cx, cy) {
    let fresh = 0;
    const neighbours = new Map();
    for (const { a, b } of edges) {
      if (!neighbours.has(a)) neighbours.set(a, []);
      if (!neighbours.has(b)) neighbours.set(b, []);
      neighbours.get(a).push(b);
      neighbours.get(b).push(a);
    }
    // Closer nodes first, so a depth-2 node can anchor on its freshly placed depth-1 parent.
    const order = nodes.slice().sort((x, y) => (x.me ? -1 : 0) - (y.me ? -1 : 0) || x.depth - y.depth);
    for (const node of order) {
      if (positions.has(node.id)) continue;
      fresh += 1;
      const [u, v] = hashPair(node.id);
      const anchorId = (neighbours.get(node.id) || []).find((id) => positions.has(id));
      if (node.me) {
        positions.set(node.id, { x: cx, y: cy });
        continue;
      }
      if (anchorId) {
        const anchor = positions.get(anchorId);
        const angle = u * 2 * Math.PI;
        positions.set(node.id, { x: anchor.x + Math.cos(angle) * 60, y: anchor.y + Math.sin(angle) * 60 });
      } else {
        positions.set(node.id, { x: MARGIN_X + u * (VIEW_W - 2 * MARGIN_X), y: MARGIN_TOP + v * (VIEW_H - MARGIN_TOP - MARGIN_BOTTOM) });
      }
    }
    return fresh;
  }

  function repel(pts, disp, k) {
    for (let i = 0; i < pts.length; i++) {
      for (let j = i + 1; j < pts.length; j++) {
        let dx = pts[i].x - pts[j].x;
        let dy = pts[i].y - pts[j].y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = (i - j) * 0.1; dy = 0.1; d2 = dx * dx + dy * dy; } // coincident: split deterministically
        const d = Math.sqrt(d2);
        const f = (k * k) / d;
        disp[i].x += (dx / d) * f; disp[i].y += (dy / d) * f;
        disp[j].x -= (dx / d) * f; disp[j].y -= (dy / d) * f;
      }
    }
  }

  function attract(pts, disp, links, k) {
    for (const [i, j] of links) {
      const dx = pts[i].x - pts[j].x;
      const dy = pts[i].y - pts[j].y;
      const d = Math.max(0.1, Math.sqrt(dx * dx + dy * dy));
      const f = (d * d) / k;
      disp[i].x -= (dx / d) * f; disp[i].y -= (dy / d) * f;
      disp[j].x += (dx / d) * f; disp[j].y += (dy / d) * f;
    }
  }

  // A step is capped by the temperature; the drawing is fitted to the view afterwards.
  function move(p, d, temp) {
    const len = Math.sqrt(d.x * d.x + d.y * d.y);
    if (len > 0) {
      const step = Math.min(len, temp);
      p.x += (d.x / len) * step;
      p.y += (d.y / len) * step;
    }
  }

  // Fits the graph's bounding box into the view, leaving the margins labels need. The
  // positions themselves are left alone, so the fit only changes when the graph's extent
  // does; a lone node (or a tight one) is not blown up past a sane scale. The panel is wide,
  // so x may stretch somewhat more than y.
  function fitToView(points) {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const p of points) {
      minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x);
      minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y);
    }
    const fitX = (VIEW_W - 2 * MARGIN_X) / Math.max(1, maxX - minX);
    const fitY = (VIEW_H - MARGIN_TOP - MARGIN_BOTTOM) / Math.max(1, maxY - minY);
    const sy = Math.min(2.2, fitY, fitX);
    const sx = Math.min(2.2, fitX, sy * 1.6);
    const mx = (minX + maxX) / 2;
    const my = (minY + maxY) / 2;
    const midY = (MARGIN_TOP + VIEW_H - MARGIN_BOTTOM) / 2;
    return (p) => ({ x: VIEW_W / 2 + (p.x - mx) * sx, y: midY + (p.y - my) * sy });
  }

  // ---------------------------------------------------------------- wiring

  function copyTicket() {
    const text = $('ticket').textContent;
    const button = $('copy-ticket');
    const done = (label) => { button.textContent = label; setTimeout(() => { button.textContent = 'copy'; }, 1500); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(() => done('copied'), () => selectTicket(done));
    } else {
      selectTicket(done);
    }
  }

  // Without the clipboard API (plain http on some browsers): select it so Ctrl+C works.
  function selectTicket(done) {
    const range = document.createRange();
    range.selectNodeContents($('ticket'));
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    done('selected');
  }

  function start() {
    $('copy-ticket').addEventListener('click', copyTicket);
    $('topic-select').addEventListener('change', (e) => selectTopic(e.target.value || null));
    // Opening the printed address in this tab again brings a (new) token.
    window.addEventListener('hashchange', () => {
      const token = readToken();
      if (token) { state.token = token; pollOverview(); }
    });
    state.token = readToken();
    if (!state.token) {
      setPageState('unauthorized');
      return;
    }
    pollOverview();
  }

  start();
})();
