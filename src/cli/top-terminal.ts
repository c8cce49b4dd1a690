// The terminal `carnx top` borrows: alternate screen, hidden cursor, raw keys; and giving all of it back, once.
import type { ReadStream, WriteStream } from 'node:tty';

const ESC = '\x1b[';
const ALT_SCREEN_ON = `${ESC}?1049h`;
const ALT_SCREEN_OFF = `${ESC}?1049l`;
const CURSOR_HIDE = `${ESC}?25l`;
const CURSOR_SHOW = `${ESC}?25h`;
const CLEAR_TO_EOL = `${ESC}K`;
const CLEAR_BELOW = `${ESC}J`;

export class TopTerminal {
  readonly #input: ReadStream;
  readonly #output: WriteStream;
  #entered = false;
  /** A last resort: whatever ends the process (even process.exit) gives the terminal back. */
  readonly #onExit = () => this.restore();

  constructor(input: ReadStream, output: WriteStream) {
    this.#input = input;
    this.#output = output;
  }

  get columns(): number {
    return this.#output.columns || 80;
  }

  get rows(): number {
    return this.#output.rows || 24;
  }

  enter(): void {
    if (this.#entered) return;
    this.#entered = true;
    process.on('exit', this.#onExit);
    this.#input.setRawMode(true);
    this.#input.resume();
    this.#output.write(`${ALT_SCREEN_ON}${CURSOR_HIDE}`);
  }

  /** Paints the screen in place: each line at its row, the rest of each row and of the screen cleared. */
  draw(lines: readonly string[]): void {
    const rows = lines.map((line, i) => `${ESC}${i + 1};1H${line}${CLEAR_TO_EOL}`).join('');
    this.#output.write(`${rows}${CLEAR_BELOW}`);
  }

  /** Idempotent; synchronous writes, so it also works from an 'exit' handler. */
  restore(): void {
    if (!this.#entered) return;
    this.#entered = false;
    process.removeListener('exit', this.#onExit);
    try {
      this.#input.setRawMode(false);
    } catch {
      // the terminal may be gone already (hang-up): nothing left to restore on it
    }
    this.#input.pause();
    this.#output.write(`${CURSOR_SHOW}${ALT_SCREEN_OFF}`);
  }
}
