// unpack, step 2: the members must match the manifest exactly (names, sizes, sha256, link
// targets), HF blobs must hash to their names, refs must name a commit of the archive.
import { IntegrityError } from '../errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import {
  archivePrefix,
  classifyMember,
  symlinkBlobTarget,
  type ManifestEntry,
  type PackManifest,
} from './pack-format.js';
import { ArchiveError, DAMAGED_HINT, type Observed } from './unpack-model.js';

export function verify(observed: Map<string, Observed>, manifest: PackManifest): void {
  const listed = new Map<string, ManifestEntry>();
  for (const e of manifest.entries) {
    classifyMember(e.name);
    listed.set(e.name, e);
  }
  const prefixes = new Set<string>();
  for (const r of manifest.repos) {
    const expected = archivePrefix(r);
    if (r.prefix !== expected)
      throw new ArchiveError(
        `Manifest entry for ${r.key} names folder ${JSON.stringify(r.prefix)}, expected ${JSON.stringify(expected)}`,
        { hint: DAMAGED_HINT },
      );
    prefixes.add(r.prefix);
  }
  const snapshotCommits = new Set<string>();
  for (const o of observed.values())
    if (o.role.kind === 'hf-snapshot') snapshotCommits.add(`${o.role.prefix}\0${o.role.commit}`);

  for (const o of observed.values()) {
    const m = listed.get(o.name);
    if (!m) throw new ArchiveError(`Archive member ${o.name} is not in the manifest`, { hint: DAMAGED_HINT });
    if (!('prefix' in o.role) || !prefixes.has(o.role.prefix))
      throw new ArchiveError(`Archive member ${o.name} belongs to no repo of the manifest`, { hint: DAMAGED_HINT });
    if (m.type !== o.type)
      throw new ArchiveError(`Archive member ${o.name} is a ${o.type}, the manifest says ${m.type}`, {
        hint: DAMAGED_HINT,
      });
    if (o.type === 'symlink') {
      if (m.target !== o.target)
        throw new ArchiveError(`Link ${o.name} points to ${o.target}, the manifest says ${m.target}`, {
          hint: DAMAGED_HINT,
        });
      const blob = symlinkBlobTarget(o.name, o.target ?? '');
      if (observed.get(blob)?.type !== 'file')
        throw new ArchiveError(`Link ${o.name} points to ${blob}, which is not in the archive`, { hint: DAMAGED_HINT });
      continue;
    }
    if (m.size !== o.size) throw damaged(new IntegrityError(o.name, String(m.size), String(o.size), 'size'));
    if (m.sha256 !== o.sha256) throw damaged(new IntegrityError(o.name, String(m.sha256), String(o.sha256), 'sha256'));
    if (o.role.kind === 'hf-blob') {
      const actual = o.role.etag.length === 40 ? o.gitSha1 : o.sha256;
      if (actual !== o.role.etag)
        throw damaged(
          new IntegrityError(o.name, o.role.etag, String(actual), o.role.etag.length === 40 ? 'git-sha1' : 'sha256'),
        );
    }
    if (o.role.kind === 'hf-ref') {
      const commit = o.small?.toString('utf8') ?? '';
      if (!isCommitHash(commit))
        throw new ArchiveError(`Ref ${o.name} does not hold a commit hash`, { hint: DAMAGED_HINT });
      if (!snapshotCommits.has(`${o.role.prefix}\0${commit}`))
        throw new ArchiveError(`Ref ${o.name} points to ${commit}, which the archive does not hold`, {
          hint: DAMAGED_HINT,
        });
    }
  }
  for (const name of listed.keys()) {
    if (!observed.has(name))
      throw new ArchiveError(`${name} is in the manifest but not in the archive (truncated copy?)`, {
        hint: DAMAGED_HINT,
      });
  }
}

function damaged(err: IntegrityError): IntegrityError {
  err.hint = DAMAGED_HINT;
  return err;
}
