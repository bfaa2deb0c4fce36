import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { KubeStatus } from '@keyway/kube';

/** How long an ending watch waits for the event in flight to finish before it is cut. */
const BOUNDARY_WAIT_MS = 500;

/**
 * Passes a JSON watch stream (one event per line, as the API server writes them) and can end
 * it the way the API server ends a watch it refuses: an ERROR event carrying a Status, then
 * the end of the response. kubectl then prints the reason ("error: keyway: … is locked")
 * instead of a bare "unexpected EOF", and a controller's reflector re-lists and is refused.
 */
export class EndableWatch extends Transform {
  private atBoundary = true;
  private ending: KubeStatus | undefined;
  private cut: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(private readonly source: Readable) {
    super();
  }

  /** JSON watches only: a protobuf watch is length-framed and is simply closed. */
  static suits(contentType: string | string[] | undefined): boolean {
    const type = Array.isArray(contentType) ? contentType[0] : contentType;
    return typeof type === 'string' && /^application\/json\b/i.test(type);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.finished) return done();
    if (this.ending) {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        this.push(chunk);
        return done();
      }
      this.push(chunk.subarray(0, nl + 1));
      this.finish();
      return done();
    }
    this.push(chunk);
    if (chunk.length > 0) this.atBoundary = chunk[chunk.length - 1] === 0x0a;
    done();
  }

  /** Ends the watch with `status` at the next event boundary (or cuts it after a short wait). */
  endWith(status: KubeStatus): void {
    if (this.ending || this.finished) return;
    this.ending = status;
    if (this.atBoundary) return this.finish();
    this.cut = setTimeout(() => this.destroy(new Error('watch cut: the event in flight did not finish')), BOUNDARY_WAIT_MS);
    this.cut.unref();
  }

  private finish(): void {
    if (this.finished || !this.ending) return;
    this.finished = true;
    if (this.cut) clearTimeout(this.cut);
    this.source.unpipe(this);
    this.source.destroy();
    this.push(`${JSON.stringify({ type: 'ERROR', object: this.ending })}\n`);
    this.push(null);
  }
}
