// A raw Engine.IO v4 client over `ws`, for what socket.io-client never
// sends: malformed packets, floods, binary frames. It answers the server's
// pings ("2" -> "3") unless told not to, queues what the server says, and
// lets a test wait for a message or for the close, with a deadline.
import WebSocket from 'ws';
import { WAIT_MS, within } from './harness.mjs';

export class RawEngineIo {
  // `query`: the URL's query string, without '?'.
  constructor(port, { query = 'EIO=4&transport=websocket', answerPings = true, path = '/socket.io/' } = {}) {
    this.messages = [];   // every text message received, in order
    this.waiters = [];
    this.answerPings = answerPings;
    this.ws = new WebSocket(`ws://127.0.0.1:${port}${path}?${query}`, { perMessageDeflate: false });
    this.opened = new Promise((resolveOpen, reject) => {
      this.ws.once('open', resolveOpen);
      // A refused upgrade: "Unexpected server response: <status>", then a close (1006).
      this.ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolveClose) => {
      this.ws.once('close', (code, reason) => resolveClose({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {});  // reported through `opened` or `closed`
    this.ws.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${data.length} B>` : data.toString();
      if (this.answerPings && text === '2') this.send('3');
      this.messages.push(text);
      this.waiters = this.waiters.filter((w) => !w(text));
    });
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  send(data) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  // The first message (already received or to come) that satisfies `accept`.
  next(accept, what = 'a message', ms = WAIT_MS) {
    const found = this.messages.find(accept);
    if (found !== undefined) return Promise.resolve(found);
    return this.after(accept, what, ms);
  }

  // The first message from now on that satisfies `accept`.
  after(accept, what = 'a message', ms = WAIT_MS) {
    const got = new Promise((resolveMessage) => {
      this.waiters.push((text) => {
        if (!accept(text)) return false;
        resolveMessage(text);
        return true;
      });
    });
    return within(ms, what, got, () => this.messages.slice(-10).join(' | ').slice(0, 2000));
  }

  // The open packet, parsed.
  async handshake() {
    await within(WAIT_MS, 'the WebSocket to open', this.opened);
    const open = await this.next((m) => m.startsWith('0'), 'the Engine.IO open packet');
    return JSON.parse(open.slice(1));
  }

  // Open packet, then CONNECT to "/" with `auth`; resolves with the CONNECT reply's payload.
  async connect(auth = { token: 'good-raw' }) {
    const open = await this.handshake();
    this.send(`40${JSON.stringify(auth)}`);
    const reply = await this.next((m) => m.startsWith('40') || m.startsWith('44'), 'the CONNECT reply');
    if (!reply.startsWith('40')) throw new Error(`CONNECT refused: ${reply}`);
    return { open, connected: JSON.parse(reply.slice(2) || '{}') };
  }

  // Resolves with what followed `action`: the first clear error (a
  // CONNECT_ERROR "44...", an ERROR-ish event "42[\"livecast:error\",...]",
  // or an acknowledgement carrying {error}) or the close, whichever comes first.
  async errorOrClose(action, ms = WAIT_MS) {
    const mark = this.messages.length;
    const isError = (m) => m.startsWith('44') || m.startsWith('42["livecast:error"') ||
                           (/^43\d*\[/.test(m) && m.includes('"error"'));
    const error = new Promise((resolveError) => {
      const already = this.messages.slice(mark).find(isError);
      if (already) resolveError({ error: already });
      this.waiters.push((text) => {
        if (!isError(text)) return false;
        resolveError({ error: text });
        return true;
      });
    });
    action();
    const closed = this.closed.then((c) => ({ closed: c }));
    return within(ms, 'an error message or the close', Promise.race([error, closed]),
                  () => this.messages.slice(mark, mark + 10).join(' | ').slice(0, 2000));
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    return this.closed;
  }
}
