// Reads otlp.headersFile: OTLP headers kept out of the command line and the config file, one name=value per line.
import { fstatSync, openSync, closeSync, readFileSync } from 'node:fs';

/** Group or other may read the file: refused, since it holds API keys. */
const READABLE_BY_OTHERS = 0o044;

/**
 * Lines are `name=value`, split at the first `=`; blank lines and lines starting with `#` are skipped. Values are
 * literal (no percent-decoding) and trimmed. Problems name the line, never its content: a line may be a bare token.
 */
export function readHeadersFile(path: string): { headers: Record<string, string> } | { problem: string } {
  const where = `otlp.headersFile: ${path}`;
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) return { problem: `${where} is not a regular file` };
      if ((stat.mode & READABLE_BY_OTHERS) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        return { problem: `${where} is readable by group or others (mode ${mode}); chmod 600 it` };
      }
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
    return { problem: `${where}: ${why}` };
  }
  const headers = new Map<string, string>(); // a Map, so a name like "__proto__" is data
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = line.slice(0, Math.max(eq, 0)).trim();
    if (eq <= 0 || name === '') return { problem: `${where}: line ${i + 1} is not name=value` };
    if (headers.has(name))
      return { problem: `${where}: header ${JSON.stringify(name)} is given twice (line ${i + 1})` };
    headers.set(name, line.slice(eq + 1).trim());
  }
  return { headers: Object.fromEntries(headers) };
}
