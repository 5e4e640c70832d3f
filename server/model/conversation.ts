/**
 * A model CI's conversation: every turn, persisted (`conversations/<ci>.jsonl` in the state dir, 0600) so
 * it survives a hub restart, and trimmed to the model's context budget for each request — the oldest
 * turns go first, the system prompt and the newest question always stay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import type { ChatTurn } from './provider';
import { damageReport, readJsonl } from '../jsonl';

const Turn = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.string(),
  t: z.number(),
  /** An answer cut off (stopped, stream broken): kept, and marked. */
  partial: z.boolean().optional(),
});
type Turn = z.infer<typeof Turn>;

/** Rough tokens of a text: ~4 characters per token for English and code. Only a budget, not a count. */
function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + 4;
}

export class Conversation {
  private readonly turns: Turn[] = [];
  readonly file: string;

  constructor(dir: string, name: string, warn: (message: string) => void) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, `${name}.jsonl`);
    const { values, damaged, cutBytes } = readJsonl(this.file);
    let bad = damaged;
    for (const value of values) {
      const turn = Turn.safeParse(value);
      if (turn.success) this.turns.push(turn.data);
      else bad++;
    }
    const problem = damageReport(this.file, bad, cutBytes);
    if (problem) warn(problem);
  }

  get length(): number {
    return this.turns.length;
  }

  add(role: Turn['role'], content: string, partial = false): void {
    const turn: Turn = { role, content, t: Date.now(), ...(partial ? { partial: true } : {}) };
    this.turns.push(turn);
    fs.appendFileSync(this.file, `${JSON.stringify(turn)}\n`, { mode: 0o600 });
  }

  /**
   * The most recent turns that fit `budget` tokens with the system prompt, oldest first, starting with a
   * user turn (providers want that), and always including the last one.
   */
  window(budget: number, system: string): ChatTurn[] {
    let left = budget - estimateTokens(system);
    const picked: ChatTurn[] = [];
    for (let i = this.turns.length - 1; i >= 0; i--) {
      const turn = this.turns[i];
      const cost = estimateTokens(turn.content);
      if (picked.length > 0 && cost > left) break;
      left -= cost;
      picked.unshift({ role: turn.role, content: turn.partial ? `${turn.content}\n[answer cut off]` : turn.content });
    }
    while (picked.length > 1 && picked[0].role !== 'user') picked.shift();
    // Two user turns in a row (an answer failed): providers such as Anthropic want them alternating.
    return picked.reduce<ChatTurn[]>((out, turn) => {
      const last = out[out.length - 1];
      if (last && last.role === turn.role) last.content += `\n\n${turn.content}`;
      else out.push({ ...turn });
      return out;
    }, []);
  }

  remove(): void {
    fs.rmSync(this.file, { force: true });
  }
}
