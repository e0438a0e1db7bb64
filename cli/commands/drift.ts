import type { Command } from 'commander';
import { diffSnapshots, formatDiff } from '../../governance/state/diff.js';
import { loadSnapshotFile } from '../../governance/state/file.js';
import type { CatalogSnapshot } from '../../governance/state/types.js';
import { safeUrl, snapshotOf, targetUrl, type ConnectionOpts } from './snapshot.js';

/**
 * `pgairlock drift`: compare the live schema with a saved snapshot or with another database (docs/state.md).
 * Exit codes: 0 no drift; 1 drift (objects added, removed or changed); 2 usage, file or connection errors.
 */

interface DriftOpts extends ConnectionOpts { against?: string; againstUrl?: string; format: string; excludeSchema?: string[]; maxLines: string }

export function registerDrift(program: Command): void {
  program
    .command('drift')
    .description('compare the live schema with a saved snapshot (--against) or another database (--against-url); exit 1 on drift')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml); its upstream.url is the live side')
    .option('--url <postgres-url>', 'live side: this server instead of upstream.url')
    .option('-d, --database <name>', 'live database name (default: the one in the URL)')
    .option('--against <file>', 'a snapshot written by `pgairlock snapshot save`')
    .option('--against-url <postgres-url>', 'another database (e.g. staging), read now')
    .option('--exclude-schema <name...>', 'leave out these schemas on both sides (live and --against-url)')
    .option('--format <format>', 'text or json', 'text')
    .option('--max-lines <n>', 'changed definition lines shown per object (text)', '40')
    .action(async (opts: DriftOpts) => {
      if (Boolean(opts.against) === Boolean(opts.againstUrl)) throw new Error('give exactly one of --against <file> or --against-url <postgres-url>');
      if (opts.format !== 'text' && opts.format !== 'json') throw new Error(`--format must be text or json, not ${opts.format}`);
      let base: CatalogSnapshot;
      let baseLabel: string;
      if (opts.against) {
        base = loadSnapshotFile(opts.against);
        baseLabel = `snapshot ${opts.against} of ${base.database} taken ${base.takenAt}`;
      } else {
        const url = opts.againstUrl ?? '';
        base = await snapshotOf(url, opts.excludeSchema);
        baseLabel = safeUrl(url);
      }
      const liveUrl = targetUrl(opts);
      const live = await snapshotOf(liveUrl, opts.excludeSchema);
      const diff = diffSnapshots(base, live);
      if (opts.format === 'json') console.log(JSON.stringify(diff, null, 2));
      else console.log(formatDiff(diff, { baseLabel, liveLabel: `live ${safeUrl(liveUrl)}`, maxLines: Number(opts.maxLines) || 40 }));
      process.exitCode = diff.equal ? 0 : 1;
    });
}
