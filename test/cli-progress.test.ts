// Progress on a terminal (issue 11, item 6): in a real tmux pane at 80 and 120 columns the plan
// line, every `done` line and the summary stay; each bar line fits the width with its numbers
// (percent, sizes, speed, ETA); a resume says how much was kept and fetches only the rest.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Output } from '../src/cli/output.js';
import { fitBarLine, formatEta } from '../src/cli/progress-line.js';
import type { ProgressEvent } from '../src/download/types.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { ROOT, tempDir } from './helpers.js';

const run = promisify(execFile);
const hasTmux = ((): boolean => {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const LONG = 'weights/a-rather-long-folder-name/model-00001-of-00002.safetensors';
const BIG = Buffer.alloc(1_500_000, 3);
const ETA_END = /ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm)$/;

describe('progress lines', () => {
  test('fitBarLine keeps percent, sizes, speed and ETA at any width; the name is shortened first', () => {
    const l = { name: LONG, done: 123_456_789, size: 987_654_321, speed: 12_345_678 };
    for (const cols of [200, 120, 100, 80, 60]) {
      const line = fitBarLine(l, cols);
      assert.ok(line.length <= cols - 1, `${cols}: ${line.length}`);
      assert.match(line, / 12% 123\.5 MB\/987\.7 MB 12\.3 MB\/s ETA 1m11s$/, `${cols}: ${line}`);
      assert.match(line, /^…/, 'long name shortened from the front');
      assert.match(line, /safetensors/, 'the file name survives');
    }
    assert.match(fitBarLine(l, 120), /█+░+/);
    assert.equal(formatEta(Infinity), '--');
    assert.equal(formatEta(NaN), '--');
    assert.match(
      fitBarLine({ name: 'a', done: 5, size: 10, speed: 0 }, 80),
      /ETA --$/,
      'no speed: ETA unknown, not LLs',
    );
    assert.equal(formatEta(3725), '1h02m');
  });

  test('the total reaches 100% when a planned file ends without a download (install entries sharing a blob)', () => {
    const err = new PassThrough();
    let text = '';
    err.on('data', (c: Buffer) => (text += c.toString()));
    const out = new Output({
      json: false,
      quiet: false,
      tty: true,
      stdout: new PassThrough(),
      stderr: err,
      columns: 100,
    });
    const p = out.progress();
    const ev = (e: ProgressEvent): void => p.onEvent(e);
    ev({
      type: 'plan',
      repo: '2 model(s) from hubcache.lock',
      revision: 'locked',
      commit: 'locked',
      totalBytes: 2000,
      downloadBytes: 2000,
      files: [
        { path: 'a/w.bin', size: 1000, status: 'planned', localPath: '' },
        { path: 'b/w.bin', size: 1000, status: 'planned', localPath: '' },
      ],
    });
    ev({ type: 'file-progress', path: 'a/w.bin', bytes: 500, total: 1000, resumedBytes: 0 });
    ev({ type: 'file-done', path: 'b/w.bin', size: 1000, status: 'linked' });
    // eslint-disable-next-line no-control-regex -- the terminal escapes the renderer writes
    const totals = (): string[] => text.split(/\n|\x1b\[[0-9]*[AJ]/).filter((l) => l.startsWith('total'));
    assert.match(
      totals().at(-1) ?? '',
      / {2}50% 500 B\/1\.0 kB/,
      `b/w.bin left the total (was 500 B of 2.0 kB):\n${text}`,
    );
    ev({ type: 'file-done', path: 'a/w.bin', size: 1000, status: 'downloaded' });
    ev({ type: 'done', path: '/x', downloadedBytes: 1000, seconds: 1 });
    p.stop();
    assert.match(text, /^2 model\(s\) from hubcache\.lock @ locked: 2 files, 2 to download/);
    assert.match(text, /done a\/w\.bin \(1\.0 kB\)\ndownloaded 1\.0 kB in 1\.0 s, 1\.0 kB\/s\n$/);
  });
});

describe(
  'progress in a real terminal (tmux)',
  { skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux)' },
  () => {
    let hub: TestHub;
    const socket = `hubcache-test-${process.pid}`;
    // One tmux server per pane: a new session on a server whose last session just ended can race its exit.
    const tmuxOn =
      (sock: string) =>
      (...args: string[]) =>
        run('tmux', ['-L', sock, '-f', '/dev/null', ...args]);
    const tmux = tmuxOn(socket);
    before(async () => {
      hub = await startTestHub();
      hub.hf
        .createRepo('org/model')
        .commit({ 'config.json': '{"a":1}\n', [LONG]: BIG, 'tokenizer.json': Buffer.alloc(400_000, 5) });
    });
    after(async () => {
      await tmux('kill-server').catch(() => undefined);
      await hub.close();
    });

    /** Runs the CLI in a fresh pane of `cols` columns; returns every screen seen and the final scrollback. */
    async function inPane(
      cols: number,
      cache: string,
      args: string[],
      until: RegExp,
      onScreen?: (screen: string, sendKey: (key: string) => Promise<unknown>) => Promise<void>,
    ): Promise<{ screens: string[]; final: string }> {
      const name = `p${cols}-${Math.random().toString(36).slice(2, 8)}`;
      const tmux = tmuxOn(`${socket}-${name}`);
      const cmd = [
        `cd ${JSON.stringify(ROOT)}`,
        `HF_HUB_CACHE=${JSON.stringify(cache)} HF_ENDPOINT=${hub.hfEndpoint} ${JSON.stringify(process.execPath)} --import tsx test/fixtures/cli-child.ts ${args.join(' ')}; echo "EXIT=$?"`,
      ].join(' && ');
      await tmux('new-session', '-d', '-s', name, '-x', String(cols), '-y', '24', 'bash', '--norc', '--noprofile');
      await tmux('send-keys', '-t', name, cmd, 'Enter');
      const screens: string[] = [];
      for (let i = 0; i < 600; i++) {
        const { stdout } = await tmux('capture-pane', '-p', '-t', name);
        screens.push(stdout);
        if (onScreen) await onScreen(stdout, (key) => tmux('send-keys', '-t', name, key));
        if (until.test(stdout)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const { stdout: final } = await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name);
      await tmux('kill-session', '-t', name);
      return { screens, final };
    }

    for (const cols of [80, 120]) {
      test(`${cols} columns: plan, done and summary lines stay; bars fit with their numbers; a resume fetches only the rest`, async () => {
        const cache = await tempDir();
        hub.throttleBytesPerSec = 600_000;
        // 1. interrupted half-way (Ctrl-C in the pane): the partial is kept
        let sent = false;
        const first = await inPane(
          cols,
          cache,
          ['download', 'org/model', '--max-workers', '1', '--connections', '1'],
          /EXIT=\d+/,
          async (screen, sendKey) => {
            if (!sent && screen.split('\n').some((l) => /safetensors.* ([3-9]\d)% /.test(l))) {
              sent = true;
              await sendKey('C-c');
            }
          },
        );
        assert.ok(sent, `saw the big file's bar:\n${first.final}`);
        assert.match(first.final, /Interrupted: stopping/);
        const firstLines = first.final.split('\n');
        assert.ok(
          firstLines.some((l) => /^org\/model @ [0-9a-f]{8}: 3 files, 3 to download \(1\.9 MB\)$/.test(l)),
          first.final,
        );
        assert.ok(
          firstLines.some((l) => /^done config\.json \(8 B\)$/.test(l)),
          first.final,
        );
        assert.ok(
          firstLines.some((l) => /^done tokenizer\.json \(400\.0 kB\)$/.test(l)),
          first.final,
        );
        assert.ok(
          firstLines.some((l) => l === 'EXIT=130'),
          first.final,
        );
        // 2. run again: the partial is resumed, only the rest is fetched and counted in the speed
        const again = await inPane(cols, cache, ['download', 'org/model', '--max-workers', '1'], /EXIT=\d+/);
        hub.throttleBytesPerSec = undefined;
        const bars = [...first.screens, ...again.screens]
          .flatMap((sc) => sc.split('\n'))
          .filter((l) => /\d+% .*\/s ETA/.test(l));
        assert.ok(
          bars.some((b) => /safetensors/.test(b)),
          `saw the big file's bar, its name shortened:\n${first.final}`,
        );
        for (const b of bars) {
          assert.ok(b.length < cols, `fits in ${cols}: ${b}`);
          assert.match(b.trimEnd(), ETA_END, `numbers kept: ${b}`);
          assert.doesNotMatch(b, /LL/);
        }
        const lines = again.final.split('\n');
        const resumed = lines.find((l) => l.startsWith(`${LONG}: resuming `));
        const m = /resuming ([\d.]+) kB, fetching ([\d.]+) kB$/.exec(resumed ?? '');
        assert.ok(m, again.final);
        assert.ok(Math.abs(Number(m[1]) + Number(m[2]) - 1500) < 0.2, 'resumed + fetched = the file');
        assert.ok(lines.includes(`done ${LONG} (1.5 MB)`), again.final);
        assert.ok(
          lines.some(
            (l) => l.startsWith(`downloaded 1.5 MB in `) && l.includes(`(resumed ${m[1]} kB, fetched ${m[2]} kB), `),
          ),
          again.final,
        );
        assert.ok(lines.includes('EXIT=0'), again.final);
        for (const f of [first.final, again.final])
          assert.equal(f.split('\n').filter((l) => /\d+% .*ETA/.test(l)).length, 0, `no bar left behind:\n${f}`);
      });
    }
  },
);
