// Shadan console: the controller's API in a page. No framework, no external fetch; the token
// lives in this closure only (never in storage, never in a URL). The page learns that something
// changed from GET /v1/events (Server-Sent Events read through fetch, which can send the token)
// and then reads GET /v1/status once: no polling.
'use strict';

(() => {
  const state = {
    token: null,
    events: null, // the AbortController of the event stream
    refreshing: false,
    again: false,
  };

  const byId = (id) => document.getElementById(id);
  const sections = ['login', 'now', 'isolate', 'approvals', 'audit', 'agents'];
  const pages = {'#isolate': 'isolate', '#approvals': 'approvals', '#audit': 'audit',
                 '#agents': 'agents'};
  const pageOf = (hash) => pages[hash] || 'now';

  function show(section) {
    for (const id of sections) byId(id).hidden = id !== section;
    const signedIn = section !== 'login';
    byId('nav').hidden = !signedIn;
    byId('sign-out').hidden = !signedIn;
    const heading = byId(section).querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers, {Authorization: 'Bearer ' + state.token});
    const response = await fetch(path, Object.assign({}, options, {headers, cache: 'no-store'}));
    let body = null;
    try {
      body = await response.json();
    } catch (ignored) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.statusText;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  // A time in the operator's timezone, with UTC on hover.
  function timeElement(iso) {
    if (!iso) return document.createTextNode('—');
    const element = document.createElement('time');
    element.dateTime = iso;
    const date = new Date(iso);
    element.textContent = date.toLocaleString();
    element.title = date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    return element;
  }

  function cell(row, content, className) {
    const td = document.createElement('td');
    if (content instanceof Node) {
      td.appendChild(content);
    } else {
      td.textContent = content === null || content === undefined ? '—' : String(content);
    }
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function stateText(text) {
    const span = document.createElement('span');
    span.className = 'state state-' + text;
    span.textContent = text.replace(/_/g, ' ');
    return span;
  }

  // What the gateway's ruleset is known to be: the hash of its last signed ack, and whether its
  // own audit log says it was tampered with (and rebuilt) since.
  function rulesetText(info) {
    const state = (info && info.state) || {};
    if (!state.ruleset_sha256) return '—';
    const span = document.createElement('span');
    span.className = 'mono';
    span.textContent = 'as acked (' + state.ruleset_sha256.slice(0, 12) + '…)';
    span.title = state.ruleset_sha256;
    const repair = info.last_repair;
    if (repair && (!state.acked_at || Date.parse(repair.ts) >= Date.parse(state.acked_at))) {
      const wrap = document.createElement('span');
      const drift = document.createElement('span');
      drift.className = 'state state-drifted';
      drift.textContent = (repair.event === 'routes_repaired' ? 'routes' : 'rules') +
          ' tampered with, repaired ';
      wrap.append(drift, timeElement(repair.ts), document.createElement('br'), span);
      return wrap;
    }
    return span;
  }

  // The segment's latest order: what, by whom, since when (the order id in full on hover).
  function orderText(segment, order) {
    if (!segment.order_id) return '—';
    const span = document.createElement('span');
    span.title = segment.order_id;
    span.append((segment.action || 'order') + (order ? ' by ' + order.requested_by +
                 (order.drill ? ' (drill)' : '') + ', since ' : ' '));
    if (order) span.append(timeElement(order.created_at));
    else span.append(segment.order_id.slice(0, 8));
    return span;
  }

  // Host quarantines, uplink cuts and islands each gateway's last ack says hold.
  function renderRungs(gateways) {
    const list = byId('rungs');
    list.replaceChildren();
    for (const [id, info] of Object.entries(gateways)) {
      const ladder = info.ladder || {};
      const held = [];
      for (const [segment, hosts] of Object.entries(ladder.hosts || {})) {
        held.push('hosts of ' + segment + ' quarantined: ' + hosts.join(', '));
      }
      for (const segment of ladder.hosts_unlisted || []) {
        held.push('more hosts of ' + segment + ' quarantined than the ack lists');
      }
      if (ladder.uplink) {
        held.push('uplink cut (' + ladder.uplink.profiles.join(', ') + ')' +
                  (ladder.uplink.link_down ? ', links down' : ''));
      }
      if (ladder.island) held.push('island: every segment cut from every other');
      for (const text of held) {
        const item = document.createElement('li');
        item.textContent = id + ': ' + text;
        list.appendChild(item);
      }
    }
    if (list.children.length === 0) {
      const item = document.createElement('li');
      item.textContent = 'none';
      list.appendChild(item);
    }
  }

  function renderNow(status) {
    const rows = byId('now-rows');
    // When each row last changed what it shows (data-changed-at, ms since the epoch): kept
    // across renders, so a row that did not change keeps its time.
    const previous = new Map();
    for (const row of rows.children) {
      previous.set(row.dataset.segment + '|' + row.dataset.gateway, row.dataset);
    }
    rows.replaceChildren();
    const segments = Object.entries(status.segments || {});
    fillSegments(segments.map(([name]) => name));
    const ordersById = new Map((status.orders || []).map((o) => [o.order_id, o]));
    let isolated = 0;
    for (const [name, segment] of segments) {
      if (segment.state === 'isolated') isolated += 1;
      // Every gateway that borders the segment, with what it acknowledged when there is an order.
      const byGateway = segment.by_gateway || {};
      const gateways = (segment.bordered_by || []).map((id) => [id, byGateway[id] || null]);
      for (const [id, delivery] of Object.entries(byGateway)) {
        if (!gateways.some(([known]) => known === id)) gateways.push([id, delivery]);
      }
      if (gateways.length === 0) gateways.push(['—', null]);
      for (const [gateway, delivery] of gateways) {
        const row = document.createElement('tr');
        row.dataset.segment = name;
        row.dataset.gateway = gateway;
        row.dataset.shown = (segment.state || '') + '|' + (delivery || '');
        const before = previous.get(name + '|' + gateway);
        row.dataset.changedAt = before && before.shown === row.dataset.shown ?
            before.changedAt : String(Date.now());
        const th = document.createElement('th');
        th.scope = 'row';
        th.textContent = name + (segment.protected ? ' (protected)' : '');
        row.appendChild(th);
        cell(row, gateway);
        cell(row, stateText(segment.state || 'unknown'));
        cell(row, delivery ? stateText(delivery) : '—');
        cell(row, orderText(segment, ordersById.get(segment.order_id)));
        cell(row, timeElement(segment.until));
        const info = (status.gateways || {})[gateway];
        cell(row, info ? (info.connected ? 'connected' : 'not connected') : '—');
        cell(row, rulesetText(info));
        rows.appendChild(row);
      }
    }
    renderRungs(status.gateways || {});
    byId('now-summary').textContent =
        isolated + ' of ' + segments.length + ' segments isolated. Updated ' +
        new Date().toLocaleTimeString() + '.';
    const alarms = byId('alarms');
    alarms.replaceChildren();
    for (const alarm of status.alarms || []) {
      const item = document.createElement('li');
      item.textContent = JSON.stringify(alarm);
      alarms.appendChild(item);
    }
    if (alarms.children.length === 0) {
      const item = document.createElement('li');
      item.textContent = 'none';
      alarms.appendChild(item);
    }
  }

  function renderAgents(body) {
    const rows = byId('agents-rows');
    rows.replaceChildren();
    for (const agent of body.agents || []) {
      const row = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = agent.agent_id;
      row.appendChild(th);
      cell(row, stateText(agent.status || 'unknown'));
      cell(row, agent.connected ? 'connected' : 'not connected');
      cell(row, agent.version);
      cell(row, timeElement(agent.last_seen));
      const actionCell = cell(row, agent.status === 'pending' ? '' : '—');
      if (agent.status === 'pending') actionCell.append(...agentApproval(agent.agent_id));
      rows.appendChild(row);
    }
  }

  // A reason field and the result line of an action that needs one: post(path, done) sends
  // {reason} to `path` and shows the outcome under it, where it was asked.
  function reasoned(id, className) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.id = id;
    input.className = className;
    label.htmlFor = id;
    label.textContent = 'Reason';
    const result = document.createElement('p');
    result.className = 'result';
    result.setAttribute('role', 'status');
    const post = async (path, done) => {
      result.textContent = '';
      const reason = input.value.trim();
      if (!reason) {
        result.textContent = 'Give a reason (it goes into the audit log).';
        input.focus();
        return;
      }
      try {
        await api(path, {
          method: 'POST',
          headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({reason}),
        });
        result.textContent = done;
      } catch (error) {
        result.textContent = 'Not done: ' + error.message;
      }
    };
    return {label, input, result, post};
  }

  // An enrollment request: approved with a reason.
  function agentApproval(agentId) {
    const field = reasoned('enroll-reason-' + agentId, 'enroll-reason');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'enroll-approve';
    button.textContent = 'Approve ' + agentId;
    button.addEventListener('click', () =>
      field.post('/v1/agents/' + encodeURIComponent(agentId) + '/approve', 'Approved.'));
    return [field.label, field.input, button, field.result];
  }

  // ---- isolate / restore: preview, confirmation, progress --------------------------------

  const order = {request: null, orderId: null};

  function fillSegments(names) {
    const select = byId('order-segment');
    const current = select.value;
    const known = Array.from(select.options, (option) => option.value);
    if (known.join('|') === names.join('|')) return;
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (names.includes(current)) select.value = current;
  }

  const listOf = (text) => text.split(/[\s,]+/).filter(Boolean);
  const actionOf = () => byId('order-form').querySelector('input[name=action]:checked').value;

  function showOrderFields() {
    const scope = byId('order-scope').value;
    byId('order-segment-field').hidden = scope !== 'segment';
    byId('order-hosts-field').hidden = scope !== 'host';
    byId('order-gateways-field').hidden = scope !== 'uplink' && scope !== 'island';
    byId('order-ttl-field').hidden = actionOf() !== 'isolate';
  }

  // The request the form describes, or an error naming the field (which takes the focus).
  function readOrderForm() {
    const action = actionOf();
    const scope = byId('order-scope').value;
    const fail = (id, message) => {
      byId(id).focus();
      throw new Error(message);
    };
    const body = {scope};
    if (scope === 'segment') {
      body.segment = byId('order-segment').value;
      if (!body.segment) fail('order-segment', 'Choose a segment.');
    } else if (scope === 'host') {
      body.hosts = listOf(byId('order-hosts').value);
      if (body.hosts.length === 0) fail('order-hosts', 'Name at least one host address.');
    } else {
      const gateways = listOf(byId('order-gateways').value);
      if (gateways.length > 0) body.gateways = gateways;
    }
    const profile = byId('order-profile').value.trim();
    if (profile) body.profile = profile;
    body.reason = byId('order-reason').value.trim();
    if (!body.reason) fail('order-reason', 'Give a reason: it goes into every audit entry.');
    const ticket = byId('order-ticket').value.trim();
    if (ticket) body.ticket = ticket;
    if (action === 'isolate') {
      // A number field holds '' for text it cannot read ("1e"): that is a mistake, not "no
      // time" (which would cut until restored).
      if (byId('order-ttl').validity.badInput) {
        fail('order-ttl', 'The time must be a whole number of minutes, at least 1.');
      }
      const ttl = byId('order-ttl').value.trim();
      if (ttl) {
        if (!/^[0-9]+$/.test(ttl) || Number(ttl) < 1) {
          fail('order-ttl', 'The time must be a whole number of minutes, at least 1.');
        }
        body.ttl_s = Number(ttl) * 60;
      }
    }
    if (byId('order-drill').checked) {
      body.drill = true;
      if (action === 'isolate' && !body.ttl_s) {
        fail('order-ttl', 'A drill must end on its own: give it a time in minutes.');
      }
    }
    return {action, body};
  }

  function renderPreview(preview) {
    const facts = byId('preview-facts');
    facts.replaceChildren();
    const fact = (name, value) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      if (Array.isArray(value)) {
        const list = document.createElement('ul');
        for (const text of value) {
          const item = document.createElement('li');
          item.textContent = text;
          list.appendChild(item);
        }
        if (value.length === 0) dd.textContent = 'none'; else dd.appendChild(list);
      } else {
        dd.textContent = value;
      }
      facts.append(dt, dd);
    };
    const what = preview.scope + (preview.segment ? ' ' + preview.segment : '') +
        (preview.hosts.length ? ' (' + preview.hosts.join(', ') + ')' : '');
    fact('Order', preview.action + ' ' + what + ', profile ' + preview.profile +
         (preview.drill ? ', DRILL' : ''));
    if (preview.action === 'isolate') {
      fact('Ends', preview.ttl_s ? 'on its own after ' + Math.round(preview.ttl_s / 60) +
           ' min (' + preview.ttl_s + ' s)' : 'only when restored');
    }
    fact('Gateways that act (' + preview.gateways.length + ')',
         preview.gateways.map((g) => g.gateway_id + ': ' +
             (g.connected ? 'connected' : 'NOT connected') + ', enrollment ' + g.enrollment +
             (g.interfaces ? ', interfaces ' + g.interfaces.join(' ') : '')));
    const from = preview.cuts.from === 'everything' ? 'everything' : preview.cuts.from.join(', ');
    fact(preview.action === 'isolate' ? 'Cut' : 'Lifted',
         preview.cuts.what + (preview.cuts.prefixes.length ? ' = ' +
             preview.cuts.prefixes.join(', ') : '') + ', from ' + from);
    fact('Stays open: management', preview.keeps.management.map((m) => m.prefix + ' ' +
         m.proto + (m.port ? ' port ' + m.port : '') + (m.description ? ' (' +
         m.description + ')' : '')));
    if (preview.action === 'isolate') {
      fact('Stays open: profile allow list', preview.keeps.allow.map((a) => a.prefix +
           (a.description ? ' (' + a.description + ')' : '')));
    }
    fact('Signed by', preview.signing.by === 'controller' ?
         'the controller, at once' : preview.signing.operators + ' operator signature(s), rule ' +
         preview.signing.rule + ' (page Approvals)');
    const notes = byId('preview-notes');
    notes.replaceChildren(...preview.notes.map((text) => {
      const item = document.createElement('li');
      item.textContent = text;
      return item;
    }));
    const count = preview.gateways.length;
    byId('order-send').textContent = preview.signing.by === 'controller' ?
        'Send: ' + preview.action + ' at ' + count + ' gateway' + (count === 1 ? '' : 's') :
        'Request: ' + preview.action + ' (waits for ' + preview.signing.operators +
            ' signature' + (preview.signing.operators === 1 ? '' : 's') + ')';
  }

  function resetOrder() {
    order.request = null;
    byId('preview').hidden = true;
  }

  async function previewOrder() {
    byId('isolate-error').textContent = '';
    resetOrder();
    let request;
    try {
      request = readOrderForm();
    } catch (error) {
      byId('isolate-error').textContent = error.message;
      return;
    }
    try {
      const preview = await api('/v1/' + request.action + '/preview', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(request.body),
      });
      renderPreview(preview);
      order.request = request;
      byId('preview').hidden = false;
      byId('preview-title').focus();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut('The token is no longer accepted (401).');
      byId('isolate-error').textContent = 'Refused: ' + error.message;
    }
  }

  async function sendOrder() {
    const request = order.request;
    if (!request) return;
    resetOrder();
    try {
      const accepted = await api('/v1/' + request.action, {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(request.body),
      });
      order.orderId = accepted.order_id;
      byId('progress').hidden = false;
      byId('progress-title').textContent = 'Progress of ' + request.action + ' ' +
          accepted.order_id;
      byId('progress-title').focus();
      await refreshProgress();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut('The token is no longer accepted (401).');
      byId('isolate-error').textContent = 'Not sent: ' + error.message;
    }
  }

  async function refreshProgress() {
    if (!order.orderId) return;
    const view = await api('/v1/orders/' + encodeURIComponent(order.orderId));
    const rows = byId('progress-rows');
    // When each row last changed (data-changed-at), kept while it shows the same delivery.
    const previous = new Map(Array.from(rows.children, (row) => [row.dataset.gateway, row.dataset]));
    rows.replaceChildren();
    for (const [gateway, entry] of Object.entries(view.gateways || {})) {
      const row = document.createElement('tr');
      row.dataset.gateway = gateway;
      row.dataset.shown = order.orderId + '|' + (entry.delivery || '');
      const before = previous.get(gateway);
      row.dataset.changedAt = before && before.shown === row.dataset.shown ?
          before.changedAt : String(Date.now());
      if (entry.delivery === 'applied' || entry.delivery === 'already_applied') {
        row.dataset.ackedAt = entry.updated_at || '';
      }
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = gateway;
      row.appendChild(th);
      cell(row, stateText(entry.delivery || 'unknown'));
      cell(row, entry.note || '');
      cell(row, timeElement(entry.updated_at || null));
      rows.appendChild(row);
    }
    const counts = view.counts || {};
    const summary = byId('progress-summary');
    summary.dataset.outcome = view.outcome;
    summary.textContent = 'Outcome: ' + String(view.outcome).replace(/_/g, ' ') +
        (counts.total !== undefined ? ' (' + (counts.applied || 0) + ' of ' + counts.total +
         ' gateways acknowledged as applied)' : '') +
        (view.outcome === 'awaiting_approval' ? '. Operators sign it on the Approvals page.' : '.');
  }

  // ---- audit: entries and the verdict on each log's chain ---------------------------------

  const audit = {next: null, verifying: false, log: null, timer: null};

  function auditQuery(before) {
    const query = new URLSearchParams();
    query.set('log', byId('audit-log').value || 'controller');
    query.set('limit', '100');
    const event = byId('audit-event').value.trim();
    if (event) query.set('event', event);
    if (before !== null && before !== undefined) query.set('before', String(before));
    return '/v1/audit?' + query.toString();
  }

  // The verdict on the log's whole chain, reached by the controller on a thread of its own:
  // while it is being reached the page says so, and reads it when the controller announces it.
  function renderVerdict(page, nextDelay = 250) {
    const v = page.verification;
    const verdict = byId('audit-verification');
    audit.verifying = page.verifying;
    audit.log = page.log;
    if (page.verifying) awaitVerdict(nextDelay);
    if (!v) {
      verdict.className = '';
      verdict.textContent = 'Verifying the whole chain of ' + page.log + '…';
      delete verdict.dataset.valid;
      return;
    }
    verdict.className = v.valid ? 'verdict-valid' : 'verdict-broken';
    verdict.textContent = v.valid ?
        'Chain verified: ' + v.entries + ' entries, ' + (v.checkpoints === 0 ?
            'no checkpoint yet' : v.checkpoints_matched + ' of ' + v.checkpoints +
            ' checkpoints match, ' + (v.signatures_checked ? v.signatures_verified +
            ' signatures verified' : 'signatures NOT checked (no key)')) +
            (v.unprotected_entries ? '; ' + v.unprotected_entries +
                 ' newest entries not yet under a checkpoint' : '') + '.' :
        'CHAIN BROKEN: ' + v.error.message + ' (' + (v.error.file || 'the log') +
            (v.error.line ? ' line ' + v.error.line : '') +
            (v.error.log_seq !== null ? ', log_seq ' + v.error.log_seq : '') +
            '). Entries from there on are not trustworthy.';
    verdict.append(' Verified at ', timeElement(v.verified_at),
                   page.verification_current ? '.' : page.verifying ?
                       '; the log has grown since: verifying again…' :
                       '; the log has grown since (verified again at most every 10 s).');
    verdict.dataset.valid = String(v.valid);
  }

  // A verdict being reached is announced on the event stream, which can pass before the
  // answer that said "verifying" arrives: the page also asks again, after 0.25 s, then at
  // doubling intervals up to 5 s, while it still waits for that log's verdict.
  function awaitVerdict(delay) {
    if (audit.timer) return;
    audit.timer = setTimeout(async () => {
      const next = Math.min(delay * 2, 5000);
      if (!state.token || !audit.verifying || pageOf(location.hash) !== 'audit' ||
          audit.log !== byId('audit-log').value) {
        audit.timer = null;
        return;
      }
      let page = null;
      try {
        page = await api(auditQuery(null).replace('limit=100', 'limit=1'));
      } catch (ignored) {
        page = null;
      }
      audit.timer = null;
      if (page) renderVerdict(page, next); else awaitVerdict(next);
    }, delay);
  }

  function renderAudit(page, append) {
    const select = byId('audit-log');
    const current = select.value;
    const known = Array.from(select.options, (option) => option.value);
    if (known.join('|') !== page.logs.join('|')) {
      select.replaceChildren(...page.logs.map((log) => new Option(log, log)));
      select.value = page.logs.includes(current) ? current : page.log;
    }
    renderVerdict(page);
    const rows = byId('audit-rows');
    if (!append) rows.replaceChildren();
    for (const entry of page.entries) {
      const row = document.createElement('tr');
      row.dataset.event = entry.event;
      cell(row, entry.log_seq, 'mono');
      cell(row, timeElement(entry.ts));
      cell(row, entry.event);
      cell(row, entry.outcome || '—');
      const who = entry.who || {};
      const whoCell = cell(row, who.requested_by || (who.approvers || []).join(', ') ||
                                    (who.controller ? 'the controller' : '—'));
      if (who.controller) whoCell.title = 'controller key ' + who.controller;
      const what = entry.what || {};
      const where = entry.where || {};
      cell(row, [what.action, what.scope, what.segment, (what.hosts || []).join(' '),
                 where.agent_id].filter(Boolean).join(' ') || '—');
      const why = entry.why || {};
      cell(row, [why.reason || entry.reason, why.ticket].filter(Boolean).join(' · ') || '—');
      cell(row, entry.command_id || '—', 'mono');
      rows.appendChild(row);
    }
    audit.next = page.next_before;
    byId('audit-older').hidden = page.next_before === null;
  }

  async function loadAudit(append) {
    renderAudit(await api(auditQuery(append ? audit.next : null)), append);
  }

  // ---- approvals: signed here with WebCrypto Ed25519 -------------------------------------

  const utf8 = (text) => new TextEncoder().encode(text);
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));
  const fromBase64Url = (text) => fromBase64(text.replace(/-/g, '+').replace(/_/g, '/') +
                                             '='.repeat((4 - (text.length % 4)) % 4));
  const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((size, part) => size + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  // DSSE's pre-authentication encoding, byte for byte as common/ed25519.cc dssePae() makes it.
  function dssePae(payloadType, payload) {
    const type = utf8(payloadType);
    return concat(utf8('DSSEv1 ' + type.length + ' '), type, utf8(' ' + payload.length + ' '),
                  payload);
  }

  // The signing key of a `shadanctl keygen` .key file: {"type":"shadan-ed25519-private",
  // "keyid", "seed"}. Its keyid is checked against its public key, as shadanctl does.
  async function loadSigningKey(file) {
    let doc;
    try {
      doc = JSON.parse(await file.text());
    } catch (ignored) {
      throw new Error(file.name + ' is not a Shadan key file (not JSON)');
    }
    if (!doc || doc.type !== 'shadan-ed25519-private' || typeof doc.seed !== 'string' ||
        typeof doc.keyid !== 'string') {
      throw new Error(file.name + ' is not a Shadan private key (the .key of shadanctl keygen)');
    }
    const seed = fromBase64(doc.seed);
    if (seed.length !== 32) throw new Error(file.name + ': the seed is not 32 bytes');
    // PKCS #8 for an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
    const pkcs8 = concat(Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]),
                         seed);
    let key;
    try {
      key = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, true, ['sign']);
    } catch (error) {
      throw new Error('this browser cannot sign with Ed25519 (WebCrypto): ' + error.message);
    } finally {
      seed.fill(0);
      pkcs8.fill(0);
    }
    const jwk = await crypto.subtle.exportKey('jwk', key);
    const keyid = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', fromBase64Url(jwk.x))));
    if (keyid !== doc.keyid) {
      throw new Error(file.name + ': its keyid does not match its key (a damaged file?)');
    }
    return {key, keyid};
  }

  async function signApproval(approval, fileInput, result) {
    result.textContent = '';
    const file = fileInput.files[0];
    if (!file) {
      result.textContent = 'Choose your key file first.';
      fileInput.focus();
      return;
    }
    try {
      const {key, keyid} = await loadSigningKey(file);
      const pae = dssePae(approval.payloadType, fromBase64(approval.payload));
      const sig = new Uint8Array(await crypto.subtle.sign({name: 'Ed25519'}, key, pae));
      const progress = await api('/v1/approvals/' + encodeURIComponent(approval.approval_id) +
                                     '/signatures', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({keyid, sig: toBase64(sig)}),
      });
      result.textContent = progress.state === 'complete' ?
          'Signed: ' + progress.have + ' of ' + progress.needed + '. The order is on its way.' :
          'Signed: ' + progress.have + ' of ' + progress.needed + ' signatures.';
    } catch (error) {
      result.textContent = 'Not signed: ' + error.message;
    } finally {
      fileInput.value = '';
    }
  }

  function approvalTitle(approval) {
    const what = approval.segment ? approval.segment : 'every gateway named';
    return (approval.action || 'order') + ' of ' + what + ' (' + (approval.scope || 'segment') +
        ')';
  }

  // Each approval keeps its element (and the key file chosen in it) across refreshes.
  function renderApprovals(body) {
    const list = byId('approvals-list');
    const pending = body.approvals || [];
    const keep = new Set(pending.map((approval) => approval.approval_id));
    for (const article of Array.from(list.children)) {
      if (keep.has(article.dataset.approvalId)) continue;
      // Gone from the list (complete, or expired): what was done here stays on the page.
      const result = article.querySelector('.result').textContent;
      if (result) {
        const item = document.createElement('li');
        item.textContent = article.querySelector('h2').textContent + ': ' + result;
        byId('approvals-done').appendChild(item);
      }
      article.remove();
    }
    for (const approval of pending) {
      let article =
          list.querySelector('[data-approval-id="' + CSS.escape(approval.approval_id) + '"]');
      if (!article) {
        article = document.createElement('article');
        article.className = 'approval';
        article.dataset.approvalId = approval.approval_id;
        const heading = document.createElement('h2');
        const facts = document.createElement('dl');
        const label = document.createElement('label');
        const input = document.createElement('input');
        input.type = 'file';
        input.className = 'key-file';
        input.id = 'key-' + approval.approval_id;
        label.htmlFor = input.id;
        label.textContent = 'Your key file';
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'sign';
        button.textContent = 'Sign';
        const result = document.createElement('p');
        result.className = 'result';
        result.setAttribute('role', 'status');
        button.addEventListener('click', () => signApproval(article.approval, input, result));
        article.append(heading, facts, label, input, button, result);
        list.appendChild(article);
      }
      article.approval = approval;
      article.querySelector('h2').textContent = approvalTitle(approval);
      const facts = article.querySelector('dl');
      facts.replaceChildren();
      const fact = (name, value) => {
        const dt = document.createElement('dt');
        dt.textContent = name;
        const dd = document.createElement('dd');
        if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
        facts.append(dt, dd);
      };
      fact('Requested by', approval.requested_by || '—');
      fact('Reason', approval.reason || '—');
      fact('Signatures', approval.have + ' of ' + approval.needed + (approval.approvers.length ?
          ' (' + approval.approvers.join(', ') + ')' : ''));
      fact('Expires', timeElement(approval.expires_at));
      fact('Order', approval.order_id);
    }
    byId('approvals-none').hidden = pending.length > 0;
    const automatic = byId('automatic-list');
    const open = body.automatic || [];
    const keepActions = new Set(open.map((action) => action.id));
    for (const item of Array.from(automatic.children)) {
      if (!keepActions.has(item.dataset.actionId)) item.remove();
    }
    for (const action of open) {
      if (automatic.querySelector('[data-action-id="' + CSS.escape(action.id) + '"]')) continue;
      automatic.appendChild(automaticItem(action));
    }
    byId('automatic-none').hidden = open.length > 0;
  }

  // An automatic action waiting for an operator: confirm (keep it) or release (lift it).
  function automaticItem(action) {
    const item = document.createElement('li');
    item.dataset.actionId = action.id;
    const text = document.createElement('p');
    text.textContent = (action.detector || 'detector') + ' (rule ' + (action.rule || '—') + '): ' +
        action.scope + ' ' + (action.host || action.segment || '') + ', profile ' +
        action.profile + ', ' + (action.alerts || 0) + ' alert(s). ' + (action.why || '');
    const expires = document.createElement('p');
    expires.append('Ends on its own at ', timeElement(action.expires_at));
    const field = reasoned('auto-reason-' + action.id, 'auto-reason');
    const act = (verb) => field.post('/v1/orders/' + encodeURIComponent(action.id) + '/' + verb,
                                     verb === 'confirm' ? 'Confirmed.' : 'Released.');
    const confirm = document.createElement('button');
    confirm.type = 'button';
    confirm.textContent = 'Confirm (keep the cut)';
    confirm.addEventListener('click', () => act('confirm'));
    const release = document.createElement('button');
    release.type = 'button';
    release.textContent = 'Release (lift it)';
    release.addEventListener('click', () => act('release'));
    item.append(text, expires, field.label, field.input, confirm, ' ', release, field.result);
    return item;
  }

  // Reads what the current page shows; a change announced while reading reads once more.
  async function refresh() {
    if (state.refreshing) {
      state.again = true;
      return;
    }
    state.refreshing = true;
    try {
      do {
        state.again = false;
        const page = pageOf(location.hash);
        try {
          if (page === 'agents') {
            renderAgents(await api('/v1/agents'));
          } else if (page === 'isolate') {
            if (byId('order-segment').options.length === 0) renderNow(await api('/v1/status'));
            await refreshProgress();
          } else if (page === 'audit') {
            // A live list would move under the reader's eyes while paging: the entries are
            // read when opened and when asked; only a verdict being reached is read here.
            if (audit.verifying && audit.log === byId('audit-log').value) {
              renderVerdict(await api(auditQuery(null).replace('limit=100', 'limit=1')));
            }
          } else if (page === 'approvals') {
            renderApprovals(await api('/v1/approvals'));
          } else {
            renderNow(await api('/v1/status'));
          }
          byId(page + '-error').textContent = '';
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) return signOut('The token is no longer accepted (401).');
          byId(page + '-error').textContent = 'Could not read the controller: ' + error.message;
        }
      } while (state.again);
    } finally {
      state.refreshing = false;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Server-Sent Events over fetch: every `changed` event reads the page again.
  async function listen() {
    const controller = new AbortController();
    state.events = controller;
    while (state.token && state.events === controller) {
      try {
        const response = await fetch('/v1/events', {
          headers: {Authorization: 'Bearer ' + state.token, Accept: 'text/event-stream'},
          signal: controller.signal,
          cache: 'no-store',
        });
        if (response.status === 401) return signOut('The token is no longer accepted (401).');
        if (!response.ok) throw new Error('events: ' + response.status);
        byId('live').textContent = 'live';
        refresh();
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (/^event: changed$/m.test(event)) refresh();
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      byId('live').textContent = 'reconnecting…';
      await sleep(2000);
    }
  }

  function signOut(message) {
    state.token = null;
    if (state.events) state.events.abort();
    state.events = null;
    byId('live').textContent = '';
    byId('now-rows').replaceChildren();
    byId('rungs').replaceChildren();
    byId('agents-rows').replaceChildren();
    byId('approvals-list').replaceChildren();
    byId('approvals-done').replaceChildren();
    byId('automatic-list').replaceChildren();
    byId('progress-rows').replaceChildren();
    byId('progress').hidden = true;
    byId('audit-rows').replaceChildren();
    byId('audit-verification').textContent = '';
    byId('order-form').reset();
    resetOrder();
    order.orderId = null;
    show('login');
    byId('login-error').textContent = message || '';
  }

  byId('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = byId('token');
    const token = input.value.trim();
    byId('login-error').textContent = '';
    state.token = token;
    try {
      renderNow(await api('/v1/status'));
    } catch (error) {
      state.token = null;
      byId('login-error').textContent = error instanceof ApiError && error.status === 401 ?
          'The controller refused this token (401 unauthorized). Check it and try again.' :
          'Cannot reach the controller: ' + error.message;
      input.focus();
      return;
    }
    input.value = '';
    if (!(location.hash in pages)) location.hash = '#now';
    show(pageOf(location.hash));
    refresh();
    if (pageOf(location.hash) === 'audit') openAudit();
    listen();
  });

  function openAudit() {
    loadAudit(false).catch((error) => {
      byId('audit-error').textContent = 'Could not read the audit log: ' + error.message;
    });
  }

  byId('order-form').addEventListener('submit', (event) => {
    event.preventDefault();
    previewOrder();
  });
  // Anything changed after a preview makes it stale: preview again before sending.
  byId('order-form').addEventListener('input', () => {
    showOrderFields();
    resetOrder();
  });
  byId('order-send').addEventListener('click', sendOrder);
  byId('order-change').addEventListener('click', () => {
    resetOrder();
    byId('order-reason').focus();
  });
  byId('audit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    byId('audit-error').textContent = '';
    openAudit();
  });
  byId('audit-older').addEventListener('click', () => {
    loadAudit(true).catch((error) => {
      byId('audit-error').textContent = 'Could not read the audit log: ' + error.message;
    });
  });

  byId('sign-out').addEventListener('click', () => signOut('Signed out.'));

  window.addEventListener('hashchange', () => {
    if (!state.token) return;
    show(pageOf(location.hash));
    refresh();
    if (pageOf(location.hash) === 'audit') openAudit();
  });

  showOrderFields();
  show('login');
  byId('token').focus();
})();
