// Series that belong in one chart: the same quantity for training and validation, named the ways
// people name them (train_loss / val_loss, loss / val_loss as Keras does, loss/train / loss/val as
// TensorBoard users do, accuracy.test, ...). Only these role words make a group, so that unrelated
// series that happen to share a word are never drawn on one axis.

const ROLES = ['train', 'training', 'val', 'valid', 'validation', 'test', 'eval', 'evaluation', 'dev'] as const;
const ROLE = ROLES.join('|');
const PREFIX = new RegExp(`^(${ROLE})[_.\\-/](.+)$`, 'i');
const SUFFIX = new RegExp(`^(.+)[_.\\-/](${ROLE})$`, 'i');

/** `val_loss` → { stem: 'loss', role: 'val' }; a name without a role word → undefined. */
export function splitRole(name: string): { stem: string; role: string } | undefined {
  const p = PREFIX.exec(name);
  if (p) return { stem: p[2]!, role: p[1]!.toLowerCase() };
  const s = SUFFIX.exec(name);
  if (s) return { stem: s[1]!, role: s[2]!.toLowerCase() };
  return undefined;
}

export interface StemGroup {
  readonly stem: string;
  /** In drawing order: the bare name (training, by Keras's convention) first, then by role. */
  readonly names: readonly string[];
}

/** Groups of two or more of `names` that share a stem; each name in one group at most. */
export function stemGroups(names: readonly string[]): StemGroup[] {
  const byStem = new Map<string, { name: string; rank: number }[]>();
  for (const name of names) {
    const split = splitRole(name);
    if (!split) continue;
    const list = byStem.get(split.stem) ?? [];
    list.push({ name, rank: 1 + ROLES.indexOf(split.role as (typeof ROLES)[number]) });
    byStem.set(split.stem, list);
  }
  const groups: StemGroup[] = [];
  for (const [stem, list] of byStem) {
    // loss beside val_loss is the training loss (Keras); beside train_loss it is something else
    if (names.includes(stem) && !list.some((m) => m.rank <= 2)) list.push({ name: stem, rank: 0 });
    if (list.length < 2) continue;
    groups.push({ stem, names: list.sort((a, b) => a.rank - b.rank || a.name.localeCompare(b.name)).map((m) => m.name) });
  }
  return groups;
}
