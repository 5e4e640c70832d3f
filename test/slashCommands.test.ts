/** The chat's input parsing: messages, @mentions, slash commands and their errors. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseChatInput, splitWords } from '../extension/slashCommands';

test('plain messages and @mentions', () => {
  assert.deepEqual(parseChatInput('  hello there '), { kind: 'message', text: 'hello there' });
  assert.deepEqual(parseChatInput('@reviewer please look\nat this'), { kind: 'message', to: 'reviewer', text: 'please look\nat this' });
  assert.deepEqual(parseChatInput('email me @ noon'), { kind: 'message', text: 'email me @ noon' });
  assert.deepEqual(parseChatInput('@reviewer'), { kind: 'invalid', error: 'write a message after @reviewer' });
});

test('slash commands with their arguments', () => {
  assert.deepEqual(parseChatInput('/status'), { kind: 'command', command: { name: 'status' } });
  assert.deepEqual(parseChatInput('/JOBS'), { kind: 'command', command: { name: 'jobs' } });
  assert.deepEqual(parseChatInput('/help'), { kind: 'command', command: { name: 'help' } });
  assert.deepEqual(parseChatInput('/kill reviewer'), { kind: 'command', command: { name: 'kill', ci: 'reviewer' } });
  assert.deepEqual(parseChatInput('/restart reviewer'), { kind: 'command', command: { name: 'restart', ci: 'reviewer' } });
  assert.deepEqual(parseChatInput('/attach shell'), { kind: 'command', command: { name: 'attach', ci: 'shell' } });
  assert.deepEqual(parseChatInput('/export shell'), { kind: 'command', command: { name: 'export', ci: 'shell', format: 'md' } });
  assert.deepEqual(parseChatInput('/export shell cast'), { kind: 'command', command: { name: 'export', ci: 'shell', format: 'cast' } });
  assert.deepEqual(parseChatInput('/send @app stand-up in 5'), { kind: 'command', command: { name: 'send', to: '@app', text: 'stand-up in 5' } });
  assert.deepEqual(parseChatInput('/send * hi all'), { kind: 'command', command: { name: 'send', to: '*', text: 'hi all' } });
  assert.deepEqual(parseChatInput('/spawn helper'), { kind: 'command', command: { name: 'spawn', ci: 'helper' } });
  assert.deepEqual(parseChatInput('/spawn helper -- aider --model "claude sonnet" \'a b\''), {
    kind: 'command',
    command: { name: 'spawn', ci: 'helper', command: ['aider', '--model', 'claude sonnet', 'a b'] },
  });
  assert.deepEqual(parseChatInput('/spawn helper --provider ollama --model llama3.2'), {
    kind: 'command',
    command: { name: 'spawn', ci: 'helper', provider: 'ollama', model: 'llama3.2' },
  });
  assert.deepEqual(parseChatInput('/spawn gpt --provider openai --model gpt-4.1 --base-url http://127.0.0.1:1234/v1'), {
    kind: 'command',
    command: { name: 'spawn', ci: 'gpt', provider: 'openai', model: 'gpt-4.1', baseUrl: 'http://127.0.0.1:1234/v1' },
  });
});

test('unknown commands and bad arguments explain themselves', () => {
  const error = (text: string) => {
    const r = parseChatInput(text);
    assert.equal(r.kind, 'invalid', text);
    return r.kind === 'invalid' ? r.error : '';
  };
  assert.match(error('/frobnicate'), /^unknown command \/frobnicate; commands: \/spawn \/status \/jobs \/kill \/restart \/send \/attach \/export \/help$/);
  assert.match(error('/kill'), /^kill needs a CI name: \/kill <name>$/);
  assert.match(error('/kill Reviewer'), /uppercase letters; use lowercase \("reviewer"\)/);
  assert.match(error('/kill ../x'), /path separator/);
  assert.match(error('/kill a b'), /takes one CI name/);
  assert.match(error('/status now'), /\/status takes no arguments/);
  assert.match(error('/send reviewer'), /\/send needs a recipient and a text/);
  assert.match(error('/send Bad text'), /"Bad" is not a CI name/);
  assert.match(error('/export x pdf'), /formats are cast, jsonl and md \(got "pdf"\)/);
  assert.match(error('/spawn'), /spawn needs a CI name/);
  assert.match(error('/spawn x --'), /give the command after --/);
  assert.match(error('/spawn x --provider ollama'), /--provider and --model go together/);
  assert.match(error('/spawn x --model m --provider p -- bash'), /either a command .* or --provider\/--model/);
  assert.match(error('/spawn x --frob 1'), /unknown option "--frob"/);
  assert.match(error('/spawn x -- bash -c "unclosed'), /unclosed double quote/);
});

test('splitWords: quotes and escapes like a shell', () => {
  assert.deepEqual(splitWords(`a "b c" 'd e' f\\ g "h\\"i" ''`), ['a', 'b c', 'd e', 'f g', 'h"i', '']);
  assert.deepEqual(splitWords('   '), []);
  assert.deepEqual(splitWords("'unclosed"), { error: 'unclosed single quote' });
});
