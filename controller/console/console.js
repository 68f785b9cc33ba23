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
  const sections = ['login', 'now', 'agents'];

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
        const page = location.hash === '#agents' ? 'agents' : 'now';
        try {
          if (page === 'agents') {
            renderAgents(await api('/v1/agents'));
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
    if (location.hash !== '#agents') location.hash = '#now';
    show(location.hash === '#agents' ? 'agents' : 'now');
    refresh();
    listen();
  });

  byId('sign-out').addEventListener('click', () => signOut('Signed out.'));

  window.addEventListener('hashchange', () => {
    if (!state.token) return;
    show(location.hash === '#agents' ? 'agents' : 'now');
    refresh();
  });

  show('login');
  byId('token').focus();
})();
