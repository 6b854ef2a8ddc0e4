// Type declarations of @broker/client (hand-written; the implementation is src/*.js).

export type ClientState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** The broker's error codes (docs/protocol.md) and the client's own (timeout, disconnected, closed, left, token). */
export type ErrorCode =
  | 'bad_request' | 'unknown_type' | 'not_member' | 'forbidden' | 'not_found' | 'too_large'
  | 'rate_limited' | 'unavailable' | 'internal'
  | 'timeout' | 'disconnected' | 'closed' | 'left' | 'token'
  | (string & {});

export class BrokerError extends Error {
  constructor(code: ErrorCode, message: string, frame?: object);
  readonly code: ErrorCode;
  /** The broker's error frame, when the error came from one. */
  readonly frame?: { type: 'error'; id?: number | string; code: string; message: string };
}

export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  POLICY: 1008;
  SERVICE_RESTART: 1012;
  TRY_AGAIN_LATER: 1013;
}>;

export class Backoff {
  constructor(options?: { initial?: number; max?: number; factor?: number; random?: () => number });
  next(): number;
  reset(): void;
}

export interface MessageFrame<T = unknown> {
  type: 'message';
  room: string;
  seq: number;
  epoch: string;
  from: string;
  data: T;
  ts: number;
}

export interface DirectFrame<T = unknown> {
  type: 'direct';
  from: string;
  data: T;
  ts: number;
}

export interface WelcomeFrame {
  type: 'welcome';
  connection: string;
  user: string;
  namespace: string;
  node: string;
}

export interface MemberEvent {
  type: 'member_joined' | 'member_left';
  room: string;
  user: string;
}

export interface Joined {
  room: string;
  seq: number;
  epoch: string;
  recovered: boolean;
}

/** Emitted when messages were missed and cannot be recovered; delivery continues from `epoch`/`seq`. */
export interface ResetInfo {
  room: string;
  /** The epoch delivery continues in. */
  epoch: string;
  /** The position delivery continues after (the next message has a greater seq). */
  seq: number;
  previousEpoch: string | undefined;
  previousSeq: number | undefined;
  recovered: boolean;
}

export interface StateDetails {
  url: string;
  code?: number;
  reason?: string;
  /** ms until the next connection attempt (state 'disconnected'). */
  delay?: number;
  node?: string;
  connection?: string;
}

export interface Presence {
  room: string;
  members: { user: string; connections: number }[];
}

export interface History<T = unknown> {
  room: string;
  epoch: string;
  messages: MessageFrame<T>[];
  more?: boolean;
}

export interface RequestOptions {
  /** ms; defaults to the client's requestTimeout. */
  timeout?: number;
}

export interface BrokerClientOptions {
  /** An unverified user name (?user=), where the namespace allows anonymous users. */
  user?: string;
  /** A JWT, sent as ?token=. */
  token?: string;
  /** Called for each connection and before the token expires; preferred over token. */
  getToken?: () => string | Promise<string>;
  /** A WHATWG-compatible WebSocket class; defaults to globalThis.WebSocket (Node 20: pass `ws`). */
  WebSocket?: unknown;
  /** ms; default 10000. */
  requestTimeout?: number;
  /** ms for a socket to open and send its welcome; default 10000. */
  connectTimeout?: number;
  /** Reconnect delays in ms; default 250 doubling up to 10000, with jitter. */
  backoff?: { initial?: number; max?: number; factor?: number };
  /** The least delay after a 1013 close; default 5000. */
  overloadDelay?: number;
  /** ms of silence before a ping (0: off); default 20000. */
  pingInterval?: number;
  /** ms a ping may go unanswered; default 10000. */
  pingTimeout?: number;
}

type Unsubscribe = () => void;

export interface RoomEvents {
  message: (message: MessageFrame) => void;
  reset: (info: ResetInfo) => void;
  joined: (joined: Joined) => void;
  left: (frame: { type: 'left'; room: string; reason?: string }) => void;
  member_joined: (event: MemberEvent) => void;
  member_left: (event: MemberEvent) => void;
  error: (error: BrokerError) => void;
}

export class Room {
  readonly name: string;
  /** Epoch of the last position delivered. */
  readonly epoch: string | undefined;
  /** Seq of the last message delivered (or the room's seq at the join). */
  readonly seq: number | undefined;
  /** Whether the room is joined on the current connection. */
  readonly joined: boolean;
  on<E extends keyof RoomEvents>(event: E, listener: RoomEvents[E]): Unsubscribe;
  once<E extends keyof RoomEvents>(event: E, listener: RoomEvents[E]): Unsubscribe;
  off<E extends keyof RoomEvents>(event: E, listener: RoomEvents[E]): void;
  join(options?: { since?: number; epoch?: string; timeout?: number }): Promise<Joined>;
  publish(data: unknown, options?: { msgId?: string }): Promise<{ seq: number; msgId: string }>;
  presence(options?: RequestOptions): Promise<Presence>;
  history(options?: { since?: number; limit?: number } & RequestOptions): Promise<History>;
  leave(options?: RequestOptions): Promise<void>;
}

export interface ClientEvents {
  state: (state: ClientState, details: StateDetails) => void;
  direct: (direct: DirectFrame) => void;
  welcome: (welcome: WelcomeFrame) => void;
  error: (error: BrokerError) => void;
}

export class BrokerClient {
  constructor(urls: string | string[], options?: BrokerClientOptions);
  readonly state: ClientState;
  readonly url: string;
  readonly welcome: WelcomeFrame | null;
  readonly user: string | undefined;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): Unsubscribe;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): Unsubscribe;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  room(name: string): Room;
  send(to: string, data: unknown, options?: RequestOptions): Promise<{ delivered: number }>;
  request(frame: { type: string; [key: string]: unknown }, options?: RequestOptions): Promise<any>;
  ready(options?: RequestOptions): Promise<void>;
  close(): Promise<void>;
}
