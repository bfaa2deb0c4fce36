export { FrameError, SpdyHeaderInflater, SpdyParser, WebSocketParser, decodeSpdyHeaderBlock, spdyDictionary } from './frames.js';
export { SessionObserver, type ExecOutcome, type ObserverOptions, type SessionEvent, type StreamChannel } from './observer.js';
export { SessionRecorder, tapSession, type RecorderOptions, type RecordingSink, type SessionChunk, type SessionMeta, type TapOptions } from './recorder.js';
