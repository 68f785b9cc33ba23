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
  const sections = ['login', 'now', 'approvals', 'agents'];
  const pageOf = (hash) => ({'#agents': 'agents', '#approvals': 'approvals'})[hash] || 'now';

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
        cell(row, segment.order_id ? (segment.action || '') + ' ' + segment.order_id : '—', 'mono');
        cell(row, timeElement(segment.until));
        const info = (status.gateways || {})[gateway];
        cell(row, info ? (info.connected ? 'connected' : 'not connected') : '—');
        rows.appendChild(row);
      }
    }
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
      rows.appendChild(row);
    }
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
    automatic.replaceChildren();
    for (const action of body.automatic || []) {
      const item = document.createElement('li');
      item.textContent = (action.action || 'action') + ' ' + (action.order_id || '') + ': ' +
          (action.reason || '');
      automatic.appendChild(item);
    }
    if (automatic.children.length === 0) {
      const item = document.createElement('li');
      item.textContent = 'none';
      automatic.appendChild(item);
    }
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
    byId('agents-rows').replaceChildren();
    byId('approvals-list').replaceChildren();
    byId('approvals-done').replaceChildren();
    byId('automatic-list').replaceChildren();
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
    if (!['#agents', '#approvals'].includes(location.hash)) location.hash = '#now';
    show(pageOf(location.hash));
    refresh();
    listen();
  });

  byId('sign-out').addEventListener('click', () => signOut('Signed out.'));

  window.addEventListener('hashchange', () => {
    if (!state.token) return;
    show(pageOf(location.hash));
    refresh();
  });

  show('login');
  byId('token').focus();
})();
