// SiloSpan dashboard: the customer at the centre, units on their rings, handoffs between them.
// Plain JavaScript and inline SVG; every number comes from the service's REST API (/v1),
// read with the session cookie the sign-in set, so it shows what the signed-in key may read.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const SESSION_HEADER = { "X-SiloSpan-Session": "1", Accept: "application/json" };
  // Health bands for the colours (method v1 scores are 0-100; null means no data: grey).
  const BANDS = [
    { name: "good", min: 80, label: "healthy: 80 and above" },
    { name: "watch", min: 60, label: "at risk: 60 to under 80" },
    { name: "poor", min: -Infinity, label: "poor: under 60" },
  ];
  const OUTSIDE = new Set(["partner", "supplier", "channel", "alliance"]);
  // Beyond this, one mark per unit and per handoff is no longer legible (nor quick to draw):
  // units are drawn as clusters, handoffs as bundles between clusters, and the page says so.
  const LEGIBLE = { units: 150, handoffs: 600, perRing: 8, listed: 300, bundleList: 200 };
  const PAGE = 500;
  const DAY = 86400000;

  const $ = (id) => document.getElementById(id);
  const state = { who: null, data: null, selected: null, conflicts: null };

  class SignedOut extends Error {}

  // ---- the API ---------------------------------------------------------------------------

  async function call(method, path, params, body) {
    const url = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, v);
    }
    const init = { method, headers: { ...SESSION_HEADER }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => null);
    if (response.status === 401) throw new SignedOut((payload && payload.detail) || "signed out");
    if (!response.ok) {
      throw new Error((payload && payload.detail) || `${response.status} ${response.statusText}`);
    }
    return payload;
  }

  const get = (path, params) => call("GET", path, params);

  async function every(path, params, progress) {
    const items = [];
    let cursor = null;
    do {
      const page = await get(path, { ...params, limit: PAGE, cursor });
      for (const item of page.items) items.push(item);
      cursor = page.next_cursor;
      if (progress) progress(items.length, Boolean(cursor));
    } while (cursor);
    return items;
  }

  // ---- the window, kept in the address -----------------------------------------------------

  const isoDay = (date) => date.toISOString().slice(0, 10);
  const validDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text || "") && !isNaN(Date.parse(text));

  function readWindow() {
    const query = new URLSearchParams(location.search);
    const today = new Date(Math.floor(Date.now() / DAY) * DAY);
    let to = validDay(query.get("to")) ? query.get("to") : isoDay(today);
    let from = validDay(query.get("from")) ? query.get("from") : isoDay(new Date(today - 89 * DAY));
    if (from > to) [from, to] = [to, from];
    return { from, to };
  }

  // The API's window is [from, to): the last day shown is included, so `to` is the next day.
  function apiWindow(win) {
    const end = new Date(Date.parse(win.to) + DAY);
    return { from: `${win.from}T00:00:00Z`, to: `${isoDay(end)}T00:00:00Z` };
  }

  function keepWindow(win, push) {
    const url = new URL(location.href);
    url.searchParams.set("from", win.from);
    url.searchParams.set("to", win.to);
    history[push ? "pushState" : "replaceState"](null, "", url);
    $("window-from").value = win.from;
    $("window-to").value = win.to;
  }

  // ---- sign-in -----------------------------------------------------------------------------

  function showSignIn(message) {
    state.who = null;
    $("board").hidden = true;
    $("who").hidden = true;
    $("window").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("api-key").focus();
  }

  function showBoard(who) {
    state.who = who;
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("who").hidden = false;
    $("window").hidden = false;
    const role = who.partner ? `partner: ${who.partner}` : who.role;
    $("who-name").textContent = `${who.name} (${role})`;
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("api-key");
    const key = input.value.trim();
    input.value = ""; // the key is not kept by the page
    try {
      showBoard(await call("POST", "dashboard/session", {}, { key }));
      await load();
    } catch (error) {
      showSignIn(error.message);
    }
  }

  async function signOut() {
    try {
      await call("DELETE", "dashboard/session");
    } finally {
      state.data = null;
      $("rings").replaceChildren();
      showSignIn("Signed out.");
    }
  }

  // ---- loading -----------------------------------------------------------------------------

  function setStatus(text) {
    $("status").textContent = text;
  }

  async function load() {
    const win = readWindow();
    keepWindow(win, false);
    const range = apiWindow(win);
    const started = performance.now();
    const board = $("board");
    board.dataset.state = "loading";
    setStatus("Loading…");
    try {
      // a large company takes many pages: say how far the reading has got
      const read = { units: 0, handoffs: 0, scores: 0 };
      const counting = (name) => (n) => {
        read[name] = n;
        setStatus(`Loading… ${read.units} units, ${read.handoffs} handoffs, ${read.scores} handoff scores so far`);
      };
      const [units, handoffs, scores, touchpoints] = await Promise.all([
        every("v1/units", {}, counting("units")),
        every("v1/handoffs", { status: "active" }, counting("handoffs")),
        every("v1/scores/handoffs", range, counting("scores")),
        every("v1/touchpoints"),
      ]);
      const scoreOf = new Map(scores.map((s) => [s.subject.key, s]));
      state.data = { units, handoffs, scoreOf, touchpoints, range, win };
      state.conflicts = null;
      render(state.data);
      showView();
      const ms = Math.round(performance.now() - started);
      setStatus(
        `${units.length} units, ${handoffs.length} active handoffs; window ${win.from} to ` +
          `${win.to} (inclusive). Loaded in ${ms} ms.`,
      );
      // from the start of navigation to the drawn picture (the first render, on a first load)
      board.dataset.renderMs = String(Math.round(performance.now()));
      board.dataset.state = "ready";
    } catch (error) {
      board.dataset.state = "error";
      if (error instanceof SignedOut) {
        showSignIn(`Your session ended: ${error.message}`);
      } else {
        setStatus(`Could not load: ${error.message}`);
      }
    }
  }

  // ---- drawing -----------------------------------------------------------------------------

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function titled(node, text) {
    el("title", {}, node).textContent = text;
    return node;
  }

  const band = (value) =>
    value === null || value === undefined ? "none" : BANDS.find((b) => value >= b.min).name;

  const polar = (r, a) => ({ x: r * Math.cos(a), y: r * Math.sin(a) });
  const fmt = (p) => `${p.x.toFixed(1)} ${p.y.toFixed(1)}`;

  function circularMean(angles) {
    let x = 0;
    let y = 0;
    for (const a of angles) {
      x += Math.cos(a);
      y += Math.sin(a);
    }
    return Math.atan2(y, x);
  }

  // Positions: ring 1 in key order; each further ring ordered by where its neighbours nearer
  // the customer sit, so spokes cross as little as a simple rule allows.
  function layout(units, handoffs) {
    const rings = new Map();
    for (const u of units) {
      if (u.ring === null || u.ring === undefined) continue;
      if (!rings.has(u.ring)) rings.set(u.ring, []);
      rings.get(u.ring).push(u);
    }
    const depth = Math.max(1, ...rings.keys());
    const inner = 70;
    const step = (470 - inner) / depth;
    const radius = (k) => inner + (k - 0.5) * step;
    const neighbours = new Map();
    for (const h of handoffs) {
      for (const [a, b] of [
        [h.from_unit, h.to_unit],
        [h.to_unit, h.from_unit],
      ]) {
        if (!a || !b) continue;
        if (!neighbours.has(a)) neighbours.set(a, []);
        neighbours.get(a).push(b);
      }
    }
    const pos = new Map();
    for (let k = 1; k <= depth; k++) {
      const members = (rings.get(k) || []).slice().sort((a, b) => a.key.localeCompare(b.key));
      if (!members.length) continue;
      let order = members;
      let base = -Math.PI / 2;
      if (k > 1) {
        const target = new Map();
        for (const u of members) {
          const near = (neighbours.get(u.key) || []).filter((n) => pos.has(n) && pos.get(n).ring < k);
          target.set(u.key, near.length ? circularMean(near.map((n) => pos.get(n).angle)) : null);
        }
        const known = members.filter((u) => target.get(u.key) !== null);
        known.sort((a, b) => target.get(a.key) - target.get(b.key));
        order = known.concat(members.filter((u) => target.get(u.key) === null));
        if (known.length) base = target.get(known[0].key);
        if (members.length > 1 && known.length) {
          // start a little before the first target so the ring's slots straddle their targets
          base -= Math.PI / members.length / 2;
        }
      }
      order.forEach((u, i) => {
        const angle = base + (2 * Math.PI * i) / order.length;
        pos.set(u.key, { ring: k, angle, r: radius(k), ...polar(radius(k), angle) });
      });
    }
    return { pos, depth, radius };
  }

  function render(data) {
    const svg = $("rings");
    svg.replaceChildren();
    svg.dataset.from = data.range.from;
    svg.dataset.to = data.range.to;
    $("notes").textContent = "";
    const ringed = data.units.filter((u) => u.ring !== null && u.ring !== undefined).length;
    if (ringed > LEGIBLE.units || data.handoffs.length > LEGIBLE.handoffs) {
      svg.dataset.mode = "clusters";
      renderClusters(data);
      return;
    }
    svg.dataset.mode = "units";
    const { units, handoffs, scoreOf, touchpoints } = data;
    const byKey = new Map(units.map((u) => [u.key, u]));
    const { pos, depth, radius } = layout(units, handoffs);

    // rings and the customer
    const back = el("g", { class: "rings-back" }, svg);
    for (let k = depth; k >= 1; k--) {
      el("circle", { class: "ring", r: radius(k).toFixed(1) }, back);
      const at = polar(radius(k) + 20, Math.PI / 2);
      const label = el("text", { class: "ring-label", x: at.x.toFixed(1), y: at.y.toFixed(1) }, back);
      label.textContent = `ring ${k}`;
    }
    const customer = el("g", { class: "customer" }, svg);
    el("circle", { r: 52 }, customer);
    el("text", { y: 6 }, customer).textContent = "Customer";

    // handoffs drawn: both ends on the picture, or an end this key may not see
    const hidden = { count: 0 };
    const apart = [];
    const drawn = [];
    for (const h of handoffs) {
      const from = h.from_unit ? pos.get(h.from_unit) : null;
      const to = h.to_unit ? pos.get(h.to_unit) : null;
      const own = from || to;
      if ((h.from_unit && !from) || (h.to_unit && !to) || !own) {
        apart.push(h);
      } else {
        drawn.push({ h, from, to });
      }
    }
    // an end the key may not see: one marker beside the unit it does see
    const hiddenAt = new Map();
    for (const d of drawn) {
      for (const side of ["from", "to"]) {
        if (d[side]) continue;
        const other = side === "from" ? d.to : d.from;
        const anchorKey = side === "from" ? d.h.to_unit : d.h.from_unit;
        if (!hiddenAt.has(anchorKey)) {
          const angle = other.angle + 0.45;
          const r = Math.max(other.r - 40, 80);
          hiddenAt.set(anchorKey, { ring: 0, angle, r, ...polar(r, angle), hidden: true });
          hidden.count++;
        }
        d[side] = hiddenAt.get(anchorKey);
      }
    }
    const maxEvents = Math.max(1, ...drawn.map(({ h }) => events(scoreOf.get(h.key))));
    const pairs = new Map();
    for (const d of drawn) {
      const key = [d.from, d.to].map((p) => `${p.x},${p.y}`).sort().join("|");
      if (!pairs.has(key)) pairs.set(key, []);
      pairs.get(key).push(d);
    }
    const layer = el("g", { class: "handoffs" }, svg);
    for (const group of pairs.values()) {
      group.forEach((d, i) => {
        const offset = (i - (group.length - 1) / 2) * 34;
        drawHandoff(layer, d, offset, scoreOf.get(d.h.key), maxEvents);
      });
    }

    // hidden ends
    for (const p of hiddenAt.values()) {
      const g = el("g", { class: "hidden-party" }, svg);
      el("circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: 16, class: "hidden-party" }, g);
      el("text", { x: p.x.toFixed(1), y: (p.y + 30).toFixed(1), class: "hidden-label" }, g)
        .textContent = "not visible to this key";
    }

    // units
    const moments = new Map();
    for (const t of touchpoints) {
      if (t.moment_of_truth && t.owner) {
        if (!moments.has(t.owner)) moments.set(t.owner, []);
        moments.get(t.owner).push(t.name);
      }
    }
    const crowded = pos.size > 60;
    const unitLayer = el("g", { class: "units" }, svg);
    for (const [key, p] of pos) {
      drawUnit(unitLayer, byKey.get(key), p, moments.get(key), crowded);
    }

    legend(hidden.count > 0);
    listApart(units.filter((u) => u.ring === null || u.ring === undefined), apart, scoreOf);
  }


  // ---- a large company: clusters of units, bundles of handoffs -----------------------------

  // Health of a set of handoffs: the mean of their health weighted by occurrences (a handoff
  // with none weighs 1), over those with a health; null when none has one (method v1's rule
  // for provider health, applied here by the page to the API's own handoff scores).
  function pooledHealth(scores) {
    let sum = 0;
    let weight = 0;
    for (const score of scores) {
      if (!score || score.value === null || score.value === undefined) continue;
      const w = events(score) || 1;
      sum += score.value * w;
      weight += w;
    }
    return weight ? sum / weight : null;
  }

  function renderClusters(data) {
    const svg = $("rings");
    const { units, handoffs, scoreOf } = data;
    const rings = new Map();
    for (const u of units) {
      if (u.ring === null || u.ring === undefined) continue;
      if (!rings.has(u.ring)) rings.set(u.ring, []);
      rings.get(u.ring).push(u);
    }
    const depth = Math.max(1, ...rings.keys());
    const inner = 70;
    const step = (470 - inner) / depth;
    const radius = (k) => inner + (k - 0.5) * step;
    const back = el("g", { class: "rings-back" }, svg);
    for (let k = depth; k >= 1; k--) {
      el("circle", { class: "ring", r: radius(k).toFixed(1) }, back);
      const at = polar(radius(k) + 20, Math.PI / 2);
      el("text", { class: "ring-label", x: at.x.toFixed(1), y: at.y.toFixed(1) }, back).textContent = `ring ${k}`;
    }
    const customer = el("g", { class: "customer" }, svg);
    el("circle", { r: 52 }, customer);
    el("text", { y: 6 }, customer).textContent = "Customer";

    // clusters: each ring's units in order of their parent, then key, cut into equal groups
    const clusterOf = new Map();
    const clusters = [];
    for (let k = 1; k <= depth; k++) {
      const members = (rings.get(k) || []).slice().sort(
        (a, b) => (a.parent || a.key).localeCompare(b.parent || b.key) || a.key.localeCompare(b.key),
      );
      const count = Math.min(LEGIBLE.perRing, members.length);
      for (let c = 0; c < count; c++) {
        const part = members.slice(Math.floor((c * members.length) / count), Math.floor(((c + 1) * members.length) / count));
        const angle = -Math.PI / 2 + (2 * Math.PI * c) / count + (k % 2 ? 0 : Math.PI / count);
        const cluster = { id: `r${k}c${c + 1}`, ring: k, members: part, angle, r: radius(k), ...polar(radius(k), angle), inside: [] };
        clusters.push(cluster);
        for (const u of part) clusterOf.set(u.key, cluster);
      }
    }
    // bundles: the handoffs between two clusters
    const bundles = new Map();
    const apart = [];
    for (const h of handoffs) {
      const from = clusterOf.get(h.from_unit);
      const to = clusterOf.get(h.to_unit);
      if (!from || !to) {
        apart.push(h);
        continue;
      }
      if (from === to) {
        from.inside.push(h);
        continue;
      }
      const id = `${from.id}>${to.id}`;
      if (!bundles.has(id)) bundles.set(id, { id, from, to, handoffs: [] });
      bundles.get(id).handoffs.push(h);
    }
    const maxEvents = Math.max(1, ...[...bundles.values()].map((b) => b.handoffs.reduce((n, h) => n + events(scoreOf.get(h.key)), 0)));
    const layer = el("g", { class: "handoffs" }, svg);
    for (const b of bundles.values()) {
      const scores = b.handoffs.map((h) => scoreOf.get(h.key));
      const value = pooledHealth(scores);
      const n = scores.reduce((total, score) => total + events(score), 0);
      const width = 1 + 8 * Math.sqrt(n / maxEvents);
      const reverse = bundles.has(`${b.to.id}>${b.from.id}`) ? 18 : 0;
      const mx = (b.from.x + b.to.x) / 2;
      const my = (b.from.y + b.to.y) / 2;
      const dx = b.to.x - b.from.x;
      const dy = b.to.y - b.from.y;
      const len = Math.hypot(dx, dy) || 1;
      const bend = b.from.ring === b.to.ring ? 40 + reverse : reverse;
      const control = { x: mx - (dy / len) * bend, y: my + (dx / len) * bend };
      const g = el("g", {
        class: `handoff bundle h-${band(value)}`,
        "data-bundle": b.id,
        "data-health": value === null ? "" : String(value),
        "data-handoffs": String(b.handoffs.length),
        tabindex: "0",
        role: "button",
        "aria-label": `${b.handoffs.length} handoffs from cluster ${b.from.id} to ${b.to.id}, pooled health ${value === null ? "no data" : value.toFixed(1)}`,
      }, layer);
      const path = `M ${fmt(b.from)} Q ${fmt(control)} ${fmt(b.to)}`;
      el("path", { d: path, class: "line", "stroke-width": width.toFixed(2) }, g);
      g.addEventListener("click", () => selectBundle(b, value, n));
      g.addEventListener("keydown", (e) => activate(e, () => selectBundle(b, value, n)));
    }
    const nodes = el("g", { class: "units" }, svg);
    const largest = Math.max(1, ...clusters.map((c) => c.members.length));
    for (const c of clusters) {
      const outside = c.members.filter((u) => OUTSIDE.has(u.kind)).length;
      const g = el("g", {
        class: "unit cluster-node",
        "data-cluster": c.id,
        "data-units": String(c.members.length),
        "data-inside": String(c.inside.length),
        tabindex: "0",
        role: "button",
        "aria-label": `Cluster ${c.id} on ring ${c.ring}: ${c.members.length} units (${outside} outside parties), ${c.inside.length} handoffs inside`,
      }, nodes);
      const r = 12 + 16 * Math.sqrt(c.members.length / largest);
      el("circle", { class: "node cluster", cx: c.x.toFixed(1), cy: c.y.toFixed(1), r: r.toFixed(1) }, g);
      el("text", { x: c.x.toFixed(1), y: (c.y + 6).toFixed(1), class: "cluster-count" }, g).textContent = String(c.members.length);
      g.addEventListener("click", () => selectCluster(c));
      g.addEventListener("keydown", (e) => activate(e, () => selectCluster(c)));
    }
    const ringed = clusters.reduce((n, c) => n + c.members.length, 0);
    $("notes").textContent =
      `Too many to draw one by one legibly (${ringed} units on rings, ${handoffs.length} active handoffs): ` +
      `each ring's units are grouped into at most ${LEGIBLE.perRing} clusters (in order of parent unit, ` +
      `then key; the number is how many units), and handoffs between two clusters into one bundle ` +
      `(${bundles.size} bundles). A bundle's colour is the occurrence-weighted mean of its handoffs' ` +
      `health as the API scores them; its width is their occurrences. Select a cluster or a bundle ` +
      `to list its units or handoffs.`;
    legend(false);
    listApart(units.filter((u) => u.ring === null || u.ring === undefined), apart, scoreOf);
  }

  function selectCluster(c) {
    select(document.querySelector(`[data-cluster="${c.id}"]`));
    const panel = detailsPanel("cluster", c.id);
    panel.appendChild(html("h2", `Cluster ${c.id}: ${c.members.length} units on ring ${c.ring}`));
    panel.appendChild(html("p", `${c.inside.length} handoff(s) between units of this cluster are not drawn.`, { class: "muted" }));
    const list = html("ul", null, { class: "members" });
    for (const u of c.members) {
      const li = html("li");
      const button = html("button", `${u.name} (${u.kind})`, { type: "button", class: "link", "data-member": u.key });
      button.addEventListener("click", () => selectUnit(u.key, null));
      li.appendChild(button);
      list.appendChild(li);
    }
    panel.appendChild(list);
  }

  function selectBundle(b, value, n) {
    select(document.querySelector(`[data-bundle="${b.id}"]`));
    const panel = detailsPanel("bundle", b.id);
    panel.appendChild(html("h2", `${b.handoffs.length} handoffs, ${b.from.id} → ${b.to.id}`));
    panel.appendChild(
      html("p", `Pooled health ${value === null ? "no data" : value.toFixed(1)} over ${n} occurrences ` +
        "(the occurrence-weighted mean of the handoffs' health, computed by this page).", { class: "muted" }),
    );
    const scoreOf = state.data.scoreOf;
    const sorted = b.handoffs.slice().sort((x, y) => {
      const a = scoreOf.get(x.key);
      const c = scoreOf.get(y.key);
      return (a && a.value !== null ? a.value : 101) - (c && c.value !== null ? c.value : 101);
    });
    const list = html("ul", null, { class: "members" });
    for (const h of sorted.slice(0, LEGIBLE.bundleList)) {
      const li = html("li");
      const button = html("button", `${h.key}: ${h.from_unit} → ${h.to_unit}, health ${healthText(scoreOf.get(h.key))}`, {
        type: "button", class: "link", "data-member-handoff": h.key,
      });
      button.addEventListener("click", () => selectHandoff(h.key, null));
      li.appendChild(button);
      list.appendChild(li);
    }
    if (sorted.length > LEGIBLE.bundleList) {
      list.appendChild(html("li", `and ${sorted.length - LEGIBLE.bundleList} more (worst first above)`, { class: "muted" }));
    }
    panel.appendChild(list);
  }

  function events(score) {
    return (score && score.details && score.details.counts && score.details.counts.events) || 0;
  }

  function healthText(score) {
    if (!score || score.value === null || score.value === undefined) return "no data";
    return String(score.value);
  }

  function drawHandoff(layer, d, offset, score, maxEvents) {
    const { h, from, to } = d;
    const value = score ? score.value : null;
    const n = events(score);
    const width = 1.5 + 9 * Math.sqrt(n / maxEvents);
    let control;
    if (from.ring === to.ring && from.ring > 0) {
      // an arc within the ring, bulging outward
      let delta = to.angle - from.angle;
      while (delta > Math.PI) delta -= 2 * Math.PI;
      while (delta < -Math.PI) delta += 2 * Math.PI;
      const mid = from.angle + delta / 2;
      control = polar(from.r * (1 + 0.25 + Math.abs(delta) * 0.08) + offset, mid);
    } else {
      // a spoke between rings, bent sideways when several share the same two units
      const mx = (from.x + to.x) / 2;
      const my = (from.y + to.y) / 2;
      const dx = to.x - from.x;
      const dy = to.y - from.y;
      const len = Math.hypot(dx, dy) || 1;
      control = { x: mx - (dy / len) * offset, y: my + (dx / len) * offset };
    }
    const g = el(
      "g",
      {
        class: `handoff h-${band(value)}`,
        "data-handoff": h.key,
        "data-health": value === null || value === undefined ? "" : String(value),
        "data-events": String(n),
        tabindex: "0",
        role: "button",
        "aria-label": `Handoff ${h.key}: ${h.from_unit || "a unit not visible"} to ${
          h.to_unit || "a unit not visible"
        }, health ${healthText(score)}, ${n} occurrences`,
      },
      layer,
    );
    titled(g, `${h.key}: ${h.deliverable || ""}\nhealth ${healthText(score)}, ${n} occurrences`);
    const path = `M ${fmt(from)} Q ${fmt(control)} ${fmt(to)}`;
    el("path", { d: path, class: "hit" }, g);
    el("path", { d: path, class: "line", "stroke-width": width.toFixed(2) }, g);
    // the arrowhead, halfway, pointing from provider to recipient: also the click target
    const t = 0.55;
    const at = {
      x: (1 - t) ** 2 * from.x + 2 * (1 - t) * t * control.x + t ** 2 * to.x,
      y: (1 - t) ** 2 * from.y + 2 * (1 - t) * t * control.y + t ** 2 * to.y,
    };
    const tangent = {
      x: 2 * (1 - t) * (control.x - from.x) + 2 * t * (to.x - control.x),
      y: 2 * (1 - t) * (control.y - from.y) + 2 * t * (to.y - control.y),
    };
    const angle = (Math.atan2(tangent.y, tangent.x) * 180) / Math.PI;
    const size = 9 + width / 2;
    el(
      "path",
      {
        class: "mid",
        d: `M ${size} 0 L ${-size * 0.7} ${size * 0.75} L ${-size * 0.7} ${-size * 0.75} Z`,
        transform: `translate(${fmt(at)}) rotate(${angle.toFixed(1)})`,
      },
      g,
    );
    g.addEventListener("click", () => selectHandoff(h.key, g));
    g.addEventListener("keydown", (e) => activate(e, () => selectHandoff(h.key, g)));
  }

  function drawUnit(layer, unit, p, moments, crowded) {
    const outside = OUTSIDE.has(unit.kind);
    const g = el(
      "g",
      {
        class: `unit${outside ? " outside" : ""}`,
        "data-unit": unit.key,
        "data-ring": String(unit.ring),
        "data-kind": unit.kind,
        tabindex: "0",
        role: "button",
        "aria-label": `${unit.name} (${unit.kind}${outside ? ", outside party" : ""}), ring ${
          unit.ring
        }${moments ? `, owns ${moments.length} moment(s) of truth` : ""}`,
      },
      layer,
    );
    titled(g, `${unit.name}\n${unit.kind}${outside ? " (outside party)" : ""}, ring ${unit.ring}`);
    const r = crowded ? 10 : 26;
    if (outside) {
      el("rect", {
        class: "node", x: (p.x - r).toFixed(1), y: (p.y - r).toFixed(1), width: 2 * r,
        height: 2 * r, rx: 6, transform: `rotate(45 ${fmt(p).replace(" ", " ")})`,
      }, g);
    } else {
      el("circle", { class: "node", cx: p.x.toFixed(1), cy: p.y.toFixed(1), r }, g);
    }
    if (!crowded) {
      // the name outside the node, away from the customer (moments of truth face inward)
      const out = polar(r + 16, p.angle);
      const label = el("text", { x: (p.x + out.x).toFixed(1), y: (p.y + out.y + 4).toFixed(1) }, g);
      label.setAttribute("text-anchor", Math.abs(out.x) < r * 0.5 ? "middle" : out.x > 0 ? "start" : "end");
      label.textContent = unit.name.length > 26 ? `${unit.name.slice(0, 25)}…` : unit.name;
    }
    if (moments && moments.length) {
      // moments of truth: a red diamond toward the customer, one per moment (up to 3)
      moments.slice(0, 3).forEach((name, i) => {
        const q = polar(p.r - r - 12, p.angle + (i - (Math.min(moments.length, 3) - 1) / 2) * 0.12);
        titled(
          el("path", {
            class: "mot",
            d: `M ${q.x.toFixed(1)} ${(q.y - 8).toFixed(1)} l 7 8 l -7 8 l -7 -8 Z`,
            "data-moment-of-truth": name,
          }, g),
          `Moment of truth: ${name}`,
        );
      });
    }
    g.addEventListener("click", () => selectUnit(unit.key, g));
    g.addEventListener("keydown", (e) => activate(e, () => selectUnit(unit.key, g)));
  }

  function activate(event, action) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      action();
    }
  }

  function legend(hasHidden) {
    const list = $("legend");
    list.replaceChildren();
    const item = (cls, text) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch ${cls}`;
      li.append(swatch, text);
      list.appendChild(li);
    };
    for (const b of BANDS) item(b.name, `Handoff health ${b.label}`);
    item("none", "no data in the window (grey, never green)");
    const more = document.createElement("li");
    more.textContent =
      "Width: occurrences in the window. Arrow: provider to recipient. Circle: department or " +
      "team; dashed diamond: outside party (partner, supplier, channel, alliance); red " +
      "diamond: a moment of truth owned on ring 1." +
      (hasHidden ? " Grey dashed circle: units this key may not see." : "");
    list.appendChild(more);
  }

  function listApart(unconnected, apart, scoreOf) {
    const list = $("unconnected");
    list.replaceChildren();
    const total = unconnected.length + apart.length;
    if (total > LEGIBLE.listed) {
      // a long list is cut, and says so
      const keep = Math.min(unconnected.length, LEGIBLE.listed);
      const note = document.createElement("li");
      note.className = "muted";
      note.textContent = `Showing ${LEGIBLE.listed} of ${unconnected.length} unconnected units and ` +
        `${apart.length} handoffs with an end off the picture.`;
      list.appendChild(note);
      apart = apart.slice(0, LEGIBLE.listed - keep);
      unconnected = unconnected.slice(0, keep);
    }
    for (const u of unconnected) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.unconnectedUnit = u.key;
      button.textContent = `${u.name} (${u.kind})`;
      button.addEventListener("click", () => selectUnit(u.key, button));
      li.appendChild(button);
      list.appendChild(li);
    }
    // handoffs with an end off the picture are listed here, with the same attributes
    for (const h of apart) {
      const score = scoreOf.get(h.key);
      const value = score ? score.value : null;
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.handoff = h.key;
      button.dataset.health = value === null || value === undefined ? "" : String(value);
      button.textContent = `${h.from_unit || "?"} → ${h.to_unit || "?"} (${h.key}, health ${healthText(score)})`;
      button.addEventListener("click", () => selectHandoff(h.key, button));
      li.appendChild(button);
      list.appendChild(li);
    }
    if (!unconnected.length && !apart.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "None: every unit reaches the customer.";
      list.appendChild(li);
    }
  }

  // ---- details -----------------------------------------------------------------------------

  function select(node) {
    for (const old of document.querySelectorAll(".selected")) old.classList.remove("selected");
    if (node) node.classList.add("selected");
  }

  function html(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function detailsPanel(kind, key) {
    const panel = $("details");
    panel.replaceChildren();
    panel.dataset.kind = kind;
    panel.dataset.key = key;
    return panel;
  }

  const shown = (v) => (v === null || v === undefined ? "no data" : String(v));

  function componentsTable(components) {
    const table = html("table", null, { class: "components" });
    const head = table.createTHead().insertRow();
    for (const h of ["component", "value (0-1)", "count", "weight"]) head.appendChild(html("th", h));
    const body = table.createTBody();
    for (const [name, c] of Object.entries(components || {})) {
      const row = body.insertRow();
      row.dataset.component = name;
      row.appendChild(html("td", name));
      row.appendChild(html("td", shown(c.value), { class: "num", "data-value": shown(c.value) }));
      row.appendChild(html("td", shown(c.count), { class: "num" }));
      row.appendChild(html("td", shown(c.weight), { class: "num" }));
      if (c.reason) row.title = c.reason;
    }
    return table;
  }

  function factsTable(pairs) {
    const table = html("table", null, { class: "facts" });
    const body = table.createTBody();
    for (const [label, value, attr] of pairs) {
      const row = body.insertRow();
      row.appendChild(html("th", label));
      row.appendChild(html("td", shown(value), { class: "num", ...(attr ? { [attr]: shown(value) } : {}) }));
    }
    return table;
  }

  function scoreHeading(panel, score) {
    const value = score ? score.value : null;
    const big = html("p", value === null || value === undefined ? "no data" : value.toFixed(1), {
      class: "big",
      "data-score": shown(value),
    });
    panel.appendChild(big);
    if (value !== null && value !== undefined) {
      panel.appendChild(html("p", `exact: ${value} (method ${score.method})`, { class: "muted" }));
    } else if (score && score.reason) {
      panel.appendChild(html("p", score.reason, { class: "muted" }));
    }
  }

  async function selectHandoff(key, node) {
    select(node);
    const data = state.data;
    const h = data.handoffs.find((x) => x.key === key);
    const score = data.scoreOf.get(key);
    const panel = detailsPanel("handoff", key);
    panel.appendChild(html("h2", `Handoff ${key}`));
    panel.appendChild(
      html("p", `${h.from_unit || "(not visible)"} → ${h.to_unit || "(not visible)"}: ${h.deliverable || ""}`),
    );
    panel.appendChild(html("h3", "Health"));
    scoreHeading(panel, score);
    panel.appendChild(componentsTable(score ? score.components : {}));
    const details = (score && score.details) || {};
    const counts = details.counts || {};
    panel.appendChild(html("h3", "Counts and times"));
    panel.appendChild(
      factsTable([
        ...Object.entries(counts).map(([k, v]) => [k.replace("_", " "), v, `data-count-${k}`]),
        ["buffer rate", details.buffer_rate, "data-buffer-rate"],
        ["median cycle time", details.median_cycle_time, "data-cycle-time"],
        ["median lateness", details.median_lateness, "data-lateness"],
        ["timing standard", h.expected_within],
        ["touchpoint served", h.touchpoint],
      ]),
    );
    panel.appendChild(html("h3", "Findings"));
    const list = html("ul", null, { class: "findings" });
    panel.appendChild(list);
    try {
      const findings = await every("v1/findings", { subject: `handoff:${key}` });
      if (panel.dataset.key !== key) return;
      fillFindings(list, findings);
    } catch (error) {
      failed(list, error);
    }
  }

  function fillFindings(list, findings) {
    if (!findings.length) list.appendChild(html("li", "No open findings.", { class: "muted" }));
    for (const f of findings) {
      const li = html("li", null, { "data-finding": f.rule });
      li.appendChild(html("strong", `${f.rule} (severity ${f.severity}): `));
      li.appendChild(document.createTextNode(`${f.explanation} Remedy: ${f.remedy}`));
      list.appendChild(li);
    }
  }

  function failed(list, error) {
    if (error instanceof SignedOut) {
      showSignIn(`Your session ended: ${error.message}`);
      return;
    }
    list.appendChild(html("li", `Could not load: ${error.message}`, { class: "error" }));
  }

  async function selectUnit(key, node) {
    select(node);
    const data = state.data;
    const unit = data.units.find((u) => u.key === key);
    const panel = detailsPanel("unit", key);
    panel.appendChild(html("h2", unit.name));
    panel.appendChild(
      html("p", `${unit.kind}${OUTSIDE.has(unit.kind) ? " (outside party)" : ""}, ring ${shown(unit.ring)}`),
    );
    panel.appendChild(html("h3", "Alignment"));
    const scoreBox = html("div");
    panel.appendChild(scoreBox);
    panel.appendChild(html("h3", "Active goals"));
    const goals = html("ul", null, { class: "goals" });
    panel.appendChild(goals);
    panel.appendChild(html("h3", "Open conflicts"));
    const conflicts = html("ul", null, { class: "conflicts" });
    panel.appendChild(conflicts);
    const [score, goalList, open] = await Promise.allSettled([
      get(`v1/scores/units/${encodeURIComponent(key)}`, data.range),
      every("v1/goals", { owner: key, status: "active" }),
      openConflicts(),
    ]);
    if (panel.dataset.key !== key) return;
    if (score.status === "fulfilled") {
      scoreHeading(scoreBox, score.value);
      scoreBox.appendChild(componentsTable(score.value.components));
      const received = score.value.details && score.value.details.received_health;
      if (received) {
        scoreBox.appendChild(
          html("p", `Received health (reported, not scored): ${shown(received.value)} over ${shown(received.count)} handoff(s)`, {
            class: "muted",
          }),
        );
      }
    } else {
      failed(scoreBox, score.reason);
    }
    if (goalList.status === "fulfilled") {
      if (!goalList.value.length) goals.appendChild(html("li", "None visible.", { class: "muted" }));
      for (const g of goalList.value) {
        goals.appendChild(
          html("li", `${g.title} (${g.key}): ${g.direction} ${g.metric} to ${g.target}; ${g.kind}, incentive ${g.incentive_weight}`, {
            "data-goal": g.key,
          }),
        );
      }
    } else {
      failed(goals, goalList.reason);
    }
    if (open.status === "fulfilled") {
      const mine = open.value.filter((c) => c.goals.some((g) => g.owner === key));
      if (!mine.length) conflicts.appendChild(html("li", "None.", { class: "muted" }));
      for (const c of mine) {
        const [a, b] = c.goals;
        conflicts.appendChild(
          html("li", `Severity ${c.severity}: ${a.key} (${a.owner}) against ${b.key} (${b.owner}) via ${c.metric_path.join(" → ")}. ${c.reasons.join(" ")}`, {
            "data-conflict": c.id,
          }),
        );
      }
    } else {
      failed(conflicts, open.reason);
    }
  }

  async function openConflicts() {
    if (!state.conflicts) state.conflicts = every("v1/conflicts", { status: "open" });
    return state.conflicts;
  }


  // ---- views: chosen in the address's fragment (#journey/<key>, #case/<ref>, ...) ---------

  const VIEWS = ["rings", "journey", "issues", "case", "trend"];

  function route() {
    const [name, ...rest] = location.hash.slice(1).split("/");
    const view = VIEWS.includes(name) ? name : "rings";
    let arg = rest.join("/");
    try {
      arg = decodeURIComponent(arg);
    } catch {
      arg = "";
    }
    return { view, arg };
  }

  function go(view, arg) {
    location.hash = arg ? `${view}/${encodeURIComponent(arg)}` : view;
  }

  function showView() {
    const { view, arg } = route();
    for (const panel of document.querySelectorAll("[data-view-panel]")) {
      panel.hidden = panel.dataset.viewPanel !== view;
    }
    for (const tab of document.querySelectorAll(".tab")) {
      if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    if (!state.data) return;
    const loaders = { journey: () => showJourney(arg), issues: showIssues, case: () => showCase(arg), trend: showTrend };
    if (loaders[view]) loaders[view]().catch(viewFailed);
  }

  function viewFailed(error) {
    if (error instanceof SignedOut) showSignIn(`Your session ended: ${error.message}`);
    else setStatus(`Could not load: ${error.message}`);
  }

  // A unit or handoff named in another view: a button that shows it on the rings.
  function linkTo(kind, key, label) {
    const button = html("button", label || key, { type: "button", class: "link", [`data-link-${kind}`]: key });
    button.addEventListener("click", () => {
      go("rings");
      const node = document.querySelector(`#rings [data-${kind}="${CSS.escape(key)}"]`);
      if (kind === "unit") selectUnit(key, node);
      else if (state.data.handoffs.some((h) => h.key === key)) selectHandoff(key, node);
      if (node) node.focus();
    });
    return button;
  }

  const unitName = (key) => {
    const unit = state.data && state.data.units.find((u) => u.key === key);
    return unit ? unit.name : key;
  };

  // ---- journey -----------------------------------------------------------------------------

  async function showJourney(key) {
    const data = state.data;
    if (!data.journeys) data.journeys = await every("v1/journeys");
    const pick = $("journey-pick");
    const stages = $("journey-stages");
    if (!data.journeys.length) {
      pick.replaceChildren();
      stages.replaceChildren(html("p", "No journey is visible to this key.", { class: "muted" }));
      $("journey-summary").textContent = "";
      return;
    }
    const journey = data.journeys.find((j) => j.key === key) || data.journeys[0];
    pick.replaceChildren(
      ...data.journeys.map((j) => html("option", j.name, { value: j.key, ...(j === journey ? { selected: "" } : {}) })),
    );
    pick.onchange = () => go("journey", pick.value);
    stages.dataset.state = "loading";
    const [touchpoints, score] = await Promise.all([
      every("v1/touchpoints", { journey: journey.key }),
      get(`v1/scores/journeys/${encodeURIComponent(journey.key)}`, data.range).catch((e) => ({ error: e })),
    ]);
    const scores = await Promise.all(
      touchpoints.map((t) =>
        get(`v1/scores/touchpoints/${encodeURIComponent(t.key)}`, data.range).catch((e) => ({ error: e })),
      ),
    );
    if (route().view !== "journey") return;
    $("journey-summary").textContent =
      `${journey.name}${journey.segment ? ` (${journey.segment})` : ""}: journey score ` +
      `${score.error ? `unavailable (${score.error.message})` : healthText(score)}, ` +
      `${touchpoints.length} touchpoint(s). Priority = 1 + driver weight + 1 for a moment of truth.`;
    const columns = journey.stages.map((stage) => {
      const column = html("section", null, { class: "stage", "data-stage": stage });
      column.appendChild(html("h3", stage));
      return column;
    });
    touchpoints.forEach((t, i) => {
      const column = columns[journey.stages.indexOf(t.stage)] || columns[columns.length - 1];
      column.appendChild(touchpointCard(t, scores[i]));
    });
    stages.replaceChildren(...columns);
    stages.dataset.state = "ready";
  }

  function touchpointCard(t, score) {
    const card = html("article", null, { class: "touchpoint", "data-touchpoint": t.key });
    const value = score.error ? null : score.value;
    card.classList.add(`b-${band(value)}`);
    card.appendChild(html("h4", t.name));
    if (t.moment_of_truth) card.appendChild(html("span", "moment of truth", { class: "badge mot-badge" }));
    card.appendChild(
      html("p", score.error ? `score unavailable: ${score.error.message}` : `score ${healthText(score)}`, {
        class: "tp-score",
        "data-score": score.error ? "" : shown(value),
      }),
    );
    card.appendChild(html("p", `${t.channel || "channel?"}, owned by ${unitName(t.owner)}`, { class: "muted" }));
    if (score.error) return card;
    const d = score.details || {};
    const weight = d.driver_weight || {};
    card.appendChild(
      html(
        "p",
        `priority ${shown(d.priority)}; driver weight ${shown(weight.value)} (${weight.source || "?"}` +
          `${weight.n !== undefined ? `, n=${weight.n}` : ""}${weight.r !== undefined && weight.r !== null ? `, r=${weight.r}` : ""})`,
        { class: "muted", "data-priority": shown(d.priority) },
      ),
    );
    const chain = (d.upstream || []).slice().sort((a, b) => a.depth - b.depth);
    const list = html("ol", null, { class: "chain", "aria-label": "upstream handoffs, nearest first" });
    if (!chain.length) list.appendChild(html("li", "No upstream handoff serves it.", { class: "muted" }));
    for (const link of chain) {
      const li = html("li", null, { class: `b-${band(link.health)}`, "data-depth": String(link.depth) });
      li.appendChild(document.createTextNode(`depth ${link.depth}: `));
      li.appendChild(linkTo("handoff", link.handoff));
      li.appendChild(document.createTextNode(` health ${shown(link.health)}, ${shown(link.weight)} occurrences`));
      list.appendChild(li);
    }
    card.appendChild(html("p", "Upstream chain (peeling the onion):", { class: "small" }));
    card.appendChild(list);
    return card;
  }

  // ---- conflicts and findings --------------------------------------------------------------

  async function showIssues() {
    const [conflicts, findings] = await Promise.all([openConflicts(), every("v1/findings")]);
    if (route().view !== "issues") return;
    const remedies = new Map(
      findings.filter((f) => f.subject.type === "conflict").map((f) => [f.subject.key, f]),
    );
    const clist = $("conflict-list");
    clist.replaceChildren();
    if (!conflicts.length) clist.appendChild(html("li", "No open conflict visible to this key.", { class: "muted" }));
    for (const c of conflicts) {
      const li = html("li", null, { class: `sev sev-${c.severity}`, "data-conflict": c.id });
      li.appendChild(html("strong", `Severity ${c.severity}: `));
      c.goals.forEach((g, i) => {
        if (i) li.appendChild(document.createTextNode(" against "));
        li.appendChild(document.createTextNode(`${g.key} (${g.direction} ${g.metric}, incentive ${g.incentive_weight}) of `));
        li.appendChild(linkTo("unit", g.owner, unitName(g.owner)));
      });
      li.appendChild(html("p", `Metric path: ${c.metric_path.join(" → ")}. ${c.reasons.join(" ")}`));
      if (c.shared_touchpoints.length) li.appendChild(html("p", `Shared touchpoints: ${c.shared_touchpoints.join(", ")}`, { class: "muted" }));
      const finding = remedies.get(c.id);
      if (finding) li.appendChild(html("p", `Remedy: ${finding.remedy}`));
      clist.appendChild(li);
    }
    const flist = $("finding-list");
    flist.replaceChildren();
    if (!findings.length) flist.appendChild(html("li", "No open finding visible to this key.", { class: "muted" }));
    for (const f of findings) {
      const li = html("li", null, { class: `sev sev-${f.severity}`, "data-finding": f.id, "data-rule": f.rule });
      li.appendChild(html("strong", `${f.rule}, severity ${f.severity}: `));
      const subject = f.subject;
      if (subject.type === "unit" || subject.type === "handoff") {
        li.appendChild(linkTo(subject.type, subject.key, subject.type === "unit" ? unitName(subject.key) : subject.key));
      } else {
        li.appendChild(document.createTextNode(`${subject.type} ${subject.key || ""}`));
      }
      li.appendChild(html("p", f.explanation));
      li.appendChild(html("p", `Remedy: ${f.remedy}`, { class: "remedy" }));
      flist.appendChild(li);
    }
  }

  // ---- a case, as swimlanes ----------------------------------------------------------------

  function parseDuration(text) {
    // ISO 8601 durations as the API writes them (PnDTnHnMnS); null when absent
    if (!text) return null;
    const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(text);
    if (!m) return null;
    return ((+m[1] || 0) * 86400 + (+m[2] || 0) * 3600 + (+m[3] || 0) * 60 + (+m[4] || 0)) * 1000;
  }

  async function showCase(ref) {
    const input = $("case-ref");
    const svg = $("case-lanes");
    input.value = ref || "";
    if (!ref) {
      $("case-summary").textContent = "Enter a case ref (the case_ref your systems put on handoff events).";
      svg.replaceChildren();
      return;
    }
    svg.dataset.state = "loading";
    let found;
    try {
      found = await get(`v1/cases/${encodeURIComponent(ref)}`);
    } catch (error) {
      if (error instanceof SignedOut) throw error;
      $("case-summary").textContent = `No case to show: ${error.message}`;
      svg.replaceChildren();
      svg.dataset.state = "error";
      return;
    }
    if (route().view !== "case") return;
    drawCase(found);
    svg.dataset.state = "ready";
  }

  function drawCase(found) {
    const svg = $("case-lanes");
    svg.replaceChildren();
    const steps = found.steps;
    const lanes = [];
    const addLane = (key) => key && !lanes.includes(key) && lanes.push(key);
    for (const u of found.path || []) addLane(u);
    for (const s of steps) {
      addLane(s.from_unit);
      addLane(s.to_unit);
    }
    const hiddenLane = steps.some((s) => !s.visible) ? "(units not visible to this key)" : null;
    if (hiddenLane) lanes.push(hiddenLane);
    const pingPong = new Set();
    for (const [a, b] of (found.ping_pong_units || []).map((t) => [t[0], t[1]])) {
      pingPong.add(`${a}>${b}`);
      pingPong.add(`${b}>${a}`);
    }
    const times = [];
    for (const s of steps) {
      for (const t of [s.started_at, s.delivered_at, s.due_at]) if (t) times.push(Date.parse(t));
      const wait = parseDuration(s.wait_before);
      if (s.started_at && wait) times.push(Date.parse(s.started_at) - wait);
    }
    const t0 = Math.min(...times);
    const t1 = Math.max(...times, t0 + 3600000);
    const left = 190;
    const width = 1100;
    const laneH = 56;
    const top = 30;
    const height = top + lanes.length * laneH + 30;
    svg.setAttribute("viewBox", `0 0 ${left + width + 20} ${height}`);
    const x = (t) => left + ((Date.parse(t) - t0) / (t1 - t0)) * width;
    const y = (unit) => top + lanes.indexOf(unit) * laneH + laneH / 2;
    lanes.forEach((unit, i) => {
      el("rect", { class: "lane", x: 0, y: top + i * laneH, width: left + width + 20, height: laneH }, svg);
      el("text", { class: "lane-label", x: 8, y: top + i * laneH + laneH / 2 + 5 }, svg).textContent =
        unit === hiddenLane ? unit : unitName(unit);
    });
    // the time axis: days
    const dayStart = Math.floor(t0 / DAY) * DAY;
    for (let d = dayStart; d <= t1; d += DAY) {
      if (d < t0) continue;
      const xd = left + ((d - t0) / (t1 - t0)) * width;
      el("line", { class: "tick", x1: xd, x2: xd, y1: top - 6, y2: height - 24 }, svg);
      el("text", { class: "tick-label", x: xd + 3, y: top - 10 }, svg).textContent = isoDay(new Date(d));
    }
    steps.forEach((s, i) => {
      const g = el("g", { class: "step", "data-step": String(s.index) }, svg);
      if (!s.visible) {
        const yy = y(hiddenLane);
        el("rect", { class: "bar hidden-step", x: x(s.started_at || s.due_at), y: yy - 8, width: 6, height: 16 }, g);
        return;
      }
      const from = s.from_unit;
      const to = s.to_unit;
      const start = s.started_at;
      const end = s.delivered_at || s.due_at || s.started_at;
      const late = Boolean(s.late_by);
      const wait = parseDuration(s.wait_before);
      if (wait && start) {
        const ws = new Date(Date.parse(start) - wait).toISOString();
        el("line", { class: "wait", x1: x(ws), x2: x(start), y1: y(from), y2: y(from) }, g);
        el("text", { class: "wait-label", x: (x(ws) + x(start)) / 2, y: y(from) - 12 }, g).textContent = `wait ${s.wait_before}`;
      }
      const bar = el("rect", {
        class: `bar${late ? " late" : ""}${s.delivered_at ? "" : " open"}`,
        x: x(start), y: y(from) - 9, width: Math.max(4, x(end) - x(start)), height: 18, rx: 3,
      }, g);
      titled(bar, `${s.handoff}: ${unitName(from)} → ${unitName(to)}\nstarted ${start}\n` +
        `${s.delivered_at ? `delivered ${s.delivered_at}` : "not delivered"}${late ? `\nlate by ${s.late_by}` : ""}` +
        `${s.rework ? "\nreworked" : ""}${s.customer_impact ? "\nthe customer noticed" : ""}`);
      if (from !== to) {
        const transfer = el("line", {
          class: `transfer${pingPong.has(`${from}>${to}`) ? " ping-pong" : ""}`,
          x1: x(end), x2: x(end), y1: y(from), y2: y(to) + (y(to) > y(from) ? -10 : 10),
          "data-transfer": `${from}>${to}`,
        }, g);
        titled(transfer, `transfer ${unitName(from)} → ${unitName(to)}${pingPong.has(`${from}>${to}`) ? " (part of a ping-pong)" : ""}`);
        el("circle", { class: "arrive", cx: x(end), cy: y(to), r: 5 }, g);
      }
      const label = el("text", { class: "step-label", x: x(start), y: y(from) + 24 }, g);
      label.textContent = `${i + 1}. ${s.handoff}${late ? ` (late ${s.late_by})` : ""}`;
    });
    $("case-summary").textContent =
      `Case ${found.case_ref}: ${found.transfers} transfer(s) between units, ${found.ping_pongs} ping-pong(s)` +
      `${(found.ping_pong_units || []).length ? ` (${found.ping_pong_units.map((t) => t.join(" → ")).join("; ")})` : ""}, ` +
      `elapsed ${found.elapsed || "?"}, ${found.open_steps} open step(s). Red bars were late; ` +
      `orange transfers are part of a ping-pong; dashed lines are waits.`;
  }

  // ---- trend -------------------------------------------------------------------------------

  async function showTrend() {
    const data = state.data;
    const svg = $("trend-chart");
    svg.dataset.state = "loading";
    // a partner key has no company score: its trend is its own partner score
    const partner = state.who && state.who.partner;
    const path = partner ? `v1/scores/partners/${encodeURIComponent(partner)}` : "v1/scores/company";
    const score = await get(path, { ...data.range, bucket: "week" });
    const what = partner ? `Partner score of ${unitName(partner)}` : "Company score";
    if (route().view !== "trend") return;
    const series = score.series || [];
    svg.replaceChildren();
    const left = 50;
    const right = 880;
    const top = 20;
    const bottom = 280;
    const y = (v) => bottom - (v / 100) * (bottom - top);
    const x = (i) => left + (series.length > 1 ? (i / (series.length - 1)) * (right - left) : (right - left) / 2);
    for (const [name, lo, hi] of [["poor", 0, 60], ["watch", 60, 80], ["good", 80, 100]]) {
      el("rect", { class: `band band-${name}`, x: left, width: right - left, y: y(hi), height: y(lo) - y(hi) }, svg);
    }
    for (const v of [0, 20, 40, 60, 80, 100]) {
      el("text", { class: "tick-label", x: left - 8, y: y(v) + 4, "text-anchor": "end" }, svg).textContent = String(v);
    }
    let segment = [];
    const flush = () => {
      if (segment.length > 1) el("polyline", { class: "trend-line", points: segment.join(" ") }, svg);
      segment = [];
    };
    const table = $("trend-table");
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    for (const h of ["week from", what.toLowerCase()]) head.appendChild(html("th", h));
    const body = table.createTBody();
    series.forEach((bucket, i) => {
      const row = body.insertRow();
      row.appendChild(html("td", bucket.window.from.slice(0, 10)));
      row.appendChild(html("td", bucket.value === null ? `no data (${bucket.reason || ""})` : String(bucket.value), { "data-value": shown(bucket.value) }));
      if (bucket.value === null) {
        flush();
        // below the axis: a week without data is not a score of 0
        titled(el("circle", { class: "trend-gap", cx: x(i), cy: bottom + 8, r: 3 }, svg),
          `${bucket.window.from.slice(0, 10)}: no data`);
        return;
      }
      segment.push(`${x(i).toFixed(1)},${y(bucket.value).toFixed(1)}`);
      titled(el("circle", { class: "trend-point", cx: x(i), cy: y(bucket.value), r: 4, "data-week": bucket.window.from }, svg),
        `${bucket.window.from.slice(0, 10)}: ${bucket.value}`);
    });
    flush();
    if (series.length) {
      el("text", { class: "tick-label", x: left, y: bottom + 26 }, svg).textContent = series[0].window.from.slice(0, 10);
      el("text", { class: "tick-label", x: right, y: bottom + 26, "text-anchor": "end" }, svg).textContent =
        series[series.length - 1].window.from.slice(0, 10);
    }
    el("text", { class: "trend-title", x: left, y: 14 }, svg).textContent =
      `${what} over the window: ${healthText(score)}`;
    svg.dataset.state = "ready";
  }

  // ---- start -------------------------------------------------------------------------------

  async function start() {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("window").addEventListener("submit", (event) => {
      event.preventDefault();
      keepWindow({ from: $("window-from").value, to: $("window-to").value }, true);
      load();
    });
    window.addEventListener("popstate", () => {
      // a new window in the address (back/forward): read again; a new view alone: no need
      const win = readWindow();
      const shown = state.data && state.data.win;
      if (state.who && (!shown || shown.from !== win.from || shown.to !== win.to)) load();
    });
    window.addEventListener("hashchange", showView);
    $("case-form").addEventListener("submit", (event) => {
      event.preventDefault();
      go("case", $("case-ref").value.trim());
    });
    showView();
    try {
      const who = await get("dashboard/session");
      if (!who.signed_in) {
        showSignIn("");
        return;
      }
      showBoard(who);
      await load();
    } catch (error) {
      showSignIn(error instanceof SignedOut ? `Your session ended: ${error.message}` : error.message);
    }
  }

  start();
})();
