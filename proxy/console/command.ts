/**
 * The admin console's command language (pgbouncer-style, not SQL): a handful of keyword commands.
 * Parsed by a small tokenizer: words, numbers, 'quoted strings' ('' escapes a quote), and `;`.
 */
export type ConsoleCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'pending' }
  | { readonly kind: 'changes' }
  | { readonly kind: 'change'; readonly id: string }
  | { readonly kind: 'approve'; readonly id: string; readonly comment?: string }
  | { readonly kind: 'reject'; readonly id: string; readonly reason: string }
  | { readonly kind: 'audit'; readonly limit: number }
  | { readonly kind: 'sessions' }
  | { readonly kind: 'whoami' }
  | { readonly kind: 'empty' };

export class ConsoleSyntaxError extends Error {}

type Token = { readonly t: 'word' | 'string'; readonly v: string };

export function tokenize(text: string): Token[][] {
  const statements: Token[][] = [];
  let cur: Token[] = [];
  let i = 0;
  const n = text.length;
  const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  while (i < n) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
    } else if (c === ';') {
      statements.push(cur);
      cur = [];
      i++;
    } else if (c === '-' && text[i + 1] === '-') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) throw new ConsoleSyntaxError('unterminated quoted string');
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += text[i];
        i++;
      }
      cur.push({ t: 'string', v });
    } else {
      let v = '';
      while (i < n && !isSpace(text[i]!) && text[i] !== ';' && text[i] !== "'") v += text[i++];
      cur.push({ t: 'word', v });
    }
  }
  if (cur.length) statements.push(cur);
  return statements;
}

const HELP_HINT = 'Run SHOW HELP; for the list of commands.';

export function parseCommand(tokens: readonly Token[]): ConsoleCommand {
  if (tokens.length === 0) return { kind: 'empty' };
  const word = (k: number) => (tokens[k]?.t === 'word' ? tokens[k].v.toLowerCase() : undefined);
  const need = (k: number, what: string): string => {
    const tok = tokens[k];
    if (!tok) throw new ConsoleSyntaxError(`missing ${what}`);
    return tok.v;
  };
  const noMore = (k: number) => {
    if (tokens.length > k) throw new ConsoleSyntaxError(`unexpected "${tokens[k]!.v}"`);
  };
  switch (word(0)) {
    case 'show': {
      switch (word(1)) {
        case 'help':
          noMore(2);
          return { kind: 'help' };
        case 'pending':
          noMore(2);
          return { kind: 'pending' };
        case 'changes':
          noMore(2);
          return { kind: 'changes' };
        case 'change': {
          const id = need(2, 'change id');
          noMore(3);
          return { kind: 'change', id };
        }
        case 'sessions':
          noMore(2);
          return { kind: 'sessions' };
        case 'audit': {
          let limit = 20;
          if (word(2) === 'limit') {
            limit = Number(need(3, 'a number after LIMIT'));
            if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ConsoleSyntaxError('LIMIT must be an integer from 1 to 10000');
            noMore(4);
          } else noMore(2);
          return { kind: 'audit', limit };
        }
        case 'whoami':
          noMore(2);
          return { kind: 'whoami' };
        default:
          throw new ConsoleSyntaxError(`unknown SHOW command "${tokens[1]?.v ?? ''}"`);
      }
    }
    case 'approve': {
      const id = need(1, 'change id');
      const comment = tokens[2]?.t === 'string' ? tokens[2].v : undefined;
      if (tokens[2] && tokens[2].t !== 'string') throw new ConsoleSyntaxError("the comment must be a quoted string: APPROVE <id> 'comment';");
      noMore(comment === undefined ? 2 : 3);
      return { kind: 'approve', id, comment };
    }
    case 'reject': {
      const id = need(1, 'change id');
      const r = tokens[2];
      if (!r || r.t !== 'string' || r.v.trim() === '') throw new ConsoleSyntaxError("a rejection needs a reason: REJECT <id> 'reason';");
      noMore(3);
      return { kind: 'reject', id, reason: r.v };
    }
    default:
      throw new ConsoleSyntaxError(`unknown command "${tokens[0]!.v}". ${HELP_HINT}`);
  }
}

export const HELP_ROWS: readonly [string, string][] = [
  ['SHOW HELP;', 'this list'],
  ['SHOW PENDING;', 'change requests waiting for approval'],
  ['SHOW CHANGES;', 'recent change requests in any state'],
  ['SHOW CHANGE <id>;', 'one change request: statement, facts, findings, reasons, events'],
  ["APPROVE <id> ['comment'];", 'approve a change (approver roles only; never your own)'],
  ["REJECT <id> 'reason';", 'reject a change (a reason is required)'],
  ['SHOW AUDIT [LIMIT n];', 'the latest audit records'],
  ['SHOW SESSIONS;', 'client sessions of this pgairlock instance'],
  ['SHOW WHOAMI;', 'your principal and roles as pgairlock resolved them'],
];
