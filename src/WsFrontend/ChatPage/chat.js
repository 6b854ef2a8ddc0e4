// The chat page (docs/chat-page.md): the JavaScript client of clients/js, served by the front-end
// under /_broker/client/, against this host's /chat namespace. No framework, no build step.
// Everything a user typed is put into the page with textContent, never as HTML.
import { BrokerClient } from '/_broker/client/index.js';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'),
  joinForm: $('join-form'),
  name: $('name'),
  room: $('room'),
  join: $('join'),
  joinError: $('join-error'),
  chat: $('chat'),
  roomTitle: $('room-title'),
  leave: $('leave'),
  messages: $('messages'),
  people: $('people'),
  peopleCount: $('people-count'),
  sendForm: $('send-form'),
  text: $('text'),
  send: $('send'),
  sendError: $('send-error'),
};

const STATE_TEXT = {
  idle: 'not connected',
  connecting: 'connecting…',
  connected: 'connected',
  disconnected: 'disconnected — reconnecting…',
  closed: 'closed',
};
// How long without a connection before the page says what may be wrong (a hint, not a timeout).
const HINT_AFTER_MS = 8000;
const HISTORY_ON_JOIN = 50;

/** The running session: one client, one room. */
let session = null;

const params = new URLSearchParams(location.search);
ui.name.value = params.get('name') || sessionStorage.getItem('chat.name') || `user-${Math.floor(1000 + Math.random() * 9000)}`;
ui.room.value = params.get('room') || sessionStorage.getItem('chat.room') || 'lobby';

function chatUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/chat`;
}

function showState(state, detail = '') {
  ui.state.dataset.state = state;
  ui.state.textContent = STATE_TEXT[state] + (detail ? ` ${detail}` : '');
}

function formatTime(ts) {
  const date = typeof ts === 'number' ? new Date(ts) : new Date();
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function textOf(data) {
  if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
  if (typeof data === 'string') return data;
  return JSON.stringify(data);
}

/** A message element, placed by seq among the others (history and live messages may interleave). */
function addMessage(frame, self) {
  if (ui.messages.querySelector(`li[data-epoch="${CSS.escape(String(frame.epoch))}"][data-seq="${frame.seq}"]`)) return;
  const item = document.createElement('li');
  item.className = 'message' + (frame.from === self ? ' own' : '');
  item.dataset.seq = String(frame.seq);
  item.dataset.epoch = String(frame.epoch);
  const head = document.createElement('div');
  head.className = 'meta';
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = frame.from;
  const time = document.createElement('time');
  time.className = 'time';
  if (typeof frame.ts === 'number') time.dateTime = new Date(frame.ts).toISOString();
  time.textContent = formatTime(frame.ts);
  head.append(from, ' ', time);
  const body = document.createElement('p');
  body.className = 'text';
  body.textContent = textOf(frame.data);
  item.append(head, body);

  const later = [...ui.messages.querySelectorAll('li.message')]
    .find((li) => li.dataset.epoch === item.dataset.epoch && Number(li.dataset.seq) > frame.seq);
  if (later) ui.messages.insertBefore(item, later);
  else ui.messages.append(item);
  scrollDown();
}

/** A line from the page itself (joined, reconnected, reset …): kind is 'info', 'resumed' or 'reset'. */
function addNote(text, kind = 'info') {
  const item = document.createElement('li');
  item.className = `note ${kind}`;
  item.textContent = text;
  ui.messages.append(item);
  scrollDown();
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderPeople(members) {
  const sorted = [...members.entries()].sort(([a], [b]) => a.localeCompare(b));
  ui.people.replaceChildren(...sorted.map(([user, connections]) => {
    const item = document.createElement('li');
    item.dataset.user = user;
    item.textContent = user;
    if (session && user === session.self) {
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      item.append(you);
    }
    if (connections > 1) item.title = `${connections} connections`;
    return item;
  }));
  ui.peopleCount.textContent = String(members.size);
}

function setComposer(enabled) {
  ui.text.disabled = !enabled;
  ui.send.disabled = !enabled;
}

class Session {
  constructor(name, roomName) {
    this.name = name;
    this.roomName = roomName;
    // Until the welcome says otherwise (a broker with a token key calls a ?user= name guest:NAME).
    this.self = name;
    this.members = new Map();
    this.everConnected = false;
    this.wasDisconnected = false;
    this.resetSinceDisconnect = false;
    this.caughtUp = 0;
    this.joins = 0;
    this.hintTimer = null;
    this.closed = false;

    this.client = new BrokerClient([chatUrl()], { user: name });
    this.client.on('state', (state) => this.onState(state));
    this.client.on('welcome', (welcome) => this.onWelcome(welcome));
    this.client.on('error', (err) => { if (!this.closed) ui.sendError.textContent = `The broker said: ${err?.message ?? err}`; });
    this.room = this.client.room(roomName);
    this.room.on('message', (frame) => this.onMessage(frame));
    this.room.on('joined', (joined) => this.onJoined(joined));
    this.room.on('reset', (info) => this.onReset(info));
    this.room.on('member_joined', (event) => this.onMember(event, true));
    this.room.on('member_left', (event) => this.onMember(event, false));
    this.room.on('error', (err) => this.onRoomError(err));
    this.room.on('left', (frame) => addNote(`The broker took you out of the room${frame?.reason ? `: ${frame.reason}` : ''}.`, 'reset'));
  }

  async start() {
    showState('connecting');
    this.armHint();
    await this.room.join();
    await this.loadHistory();
  }

  onWelcome(welcome) {
    if (welcome && typeof welcome.user === 'string') this.self = welcome.user;
  }

  onState(state) {
    if (this.closed) return;
    const user = this.client.user;
    if (typeof user === 'string' && user.length > 0) this.self = user;
    const node = this.client.welcome?.node;
    showState(state, state === 'connected' && typeof node === 'string' ? `to ${node}` : '');
    if (state === 'connected') {
      this.everConnected = true;
      this.disarmHint();
    } else {
      setComposer(false);
      if (state === 'disconnected') {
        if (this.everConnected && !this.wasDisconnected) {
          // Counted from the first loss until the room is joined again, however many attempts that takes.
          addNote('Connection lost — reconnecting…', 'info');
          this.wasDisconnected = true;
          this.resetSinceDisconnect = false;
          this.caughtUp = 0;
        }
        this.armHint();
      }
    }
  }

  onMessage(frame) {
    if (this.wasDisconnected) this.caughtUp += 1;
    addMessage(frame, this.self);
  }

  onJoined(joined) {
    this.joins += 1;
    if (this.joins === 1) {
      addNote(`You joined ${this.roomName} as ${this.self}.`, 'info');
    } else if (this.wasDisconnected) {
      if (this.resetSinceDisconnect) {
        addNote('Reconnected, but the room\'s history was reset: messages sent while you were away may be missing. Recent history reloaded.', 'reset');
        void this.loadHistory();
      } else {
        const what = this.caughtUp === 0 ? 'nothing was sent meanwhile' : `${this.caughtUp} missed message${this.caughtUp === 1 ? '' : 's'} caught up`;
        addNote(`Reconnected and resumed: nothing missed (${what}).`, 'resumed');
      }
      this.wasDisconnected = false;
    }
    setComposer(true);
    void this.refreshPresence();
  }

  onReset() {
    this.resetSinceDisconnect = true;
    if (!this.wasDisconnected) {
      addNote('The room\'s history was reset: some messages may be missing. Recent history reloaded.', 'reset');
      void this.loadHistory();
    }
  }

  onMember(event, joined) {
    if (!event || typeof event.user !== 'string') return;
    if (joined) {
      if (!this.members.has(event.user)) addNote(`${event.user} joined.`, 'info');
      this.members.set(event.user, Math.max(1, this.members.get(event.user) ?? 0));
    } else {
      if (this.members.has(event.user)) addNote(`${event.user} left.`, 'info');
      this.members.delete(event.user);
    }
    renderPeople(this.members);
  }

  onRoomError(err) {
    ui.sendError.textContent = `The room could not be joined again: ${err?.message ?? err}`;
    setComposer(false);
  }

  async refreshPresence() {
    try {
      const reply = await this.room.presence();
      const members = new Map();
      for (const member of reply.members ?? []) members.set(member.user, member.connections);
      members.set(this.self, Math.max(1, members.get(this.self) ?? 0));
      this.members = members;
      renderPeople(this.members);
    } catch (err) {
      if (!this.closed && err?.code !== 'disconnected') ui.sendError.textContent = `Who is present is unknown: ${err?.message ?? err}`;
    }
  }

  async loadHistory() {
    try {
      const reply = await this.room.history({ limit: HISTORY_ON_JOIN });
      for (const frame of reply.messages ?? []) addMessage(frame, this.self);
    } catch (err) {
      if (!this.closed && err?.code !== 'disconnected') ui.sendError.textContent = `History could not be loaded: ${err?.message ?? err}`;
    }
  }

  async publish(text) {
    await this.room.publish({ text });
  }

  armHint() {
    this.disarmHint();
    this.hintTimer = setTimeout(() => {
      if (this.closed || this.client.state === 'connected') return;
      ui.joinError.textContent = '';
      showState(this.client.state ?? 'connecting',
        '(no connection yet: is the broker running, and does its chat namespace accept ?user= names? See docs/chat-page.md)');
    }, HINT_AFTER_MS);
  }

  disarmHint() {
    if (this.hintTimer) clearTimeout(this.hintTimer);
    this.hintTimer = null;
  }

  async close() {
    this.closed = true;
    this.disarmHint();
    try {
      await this.room.leave();
    } catch {
      // leaving anyway
    }
    this.client.close();
  }
}

ui.joinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  const roomName = ui.room.value.trim();
  if (!name || !roomName) return;
  if (/^(anon-|guest:)/i.test(name) || name === 'server') {
    ui.joinError.textContent = 'Names starting with "anon-" or "guest:", and "server", are the broker\'s own: pick another.';
    return;
  }
  ui.joinError.textContent = '';
  ui.sendError.textContent = '';
  sessionStorage.setItem('chat.name', name);
  sessionStorage.setItem('chat.room', roomName);
  ui.join.disabled = true;
  ui.messages.replaceChildren();
  ui.people.replaceChildren();
  ui.peopleCount.textContent = '0';
  ui.roomTitle.textContent = `Room: ${roomName}`;
  ui.joinForm.hidden = true;
  ui.chat.hidden = false;
  const current = new Session(name, roomName);
  session = current;
  try {
    await current.start();
    ui.text.focus();
  } catch (err) {
    if (session !== current) return;
    await current.close();
    session = null;
    ui.chat.hidden = true;
    ui.joinForm.hidden = false;
    showState('idle');
    ui.joinError.textContent = `Could not join ${roomName}: ${err?.message ?? err}`;
  } finally {
    ui.join.disabled = false;
  }
});

ui.sendForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !session) return;
  ui.text.value = '';
  ui.sendError.textContent = '';
  try {
    await session.publish(text);
  } catch (err) {
    ui.sendError.textContent = `Not sent: ${err?.message ?? err}`;
    if (!ui.text.value) ui.text.value = text;
  }
});

ui.leave.addEventListener('click', async () => {
  const current = session;
  session = null;
  ui.chat.hidden = true;
  ui.joinForm.hidden = false;
  showState('idle');
  ui.name.focus();
  if (current) await current.close();
});

window.addEventListener('pagehide', () => {
  if (session) session.client.close();
});

ui.joinForm.dataset.ready = 'true';
