import { z } from 'zod';

/**
 * The boolean spellings of YAML 1.1, which Go's YAML library (and so Teleport) reads into a
 * boolean field: `enabled: yes` is true there. Keyway reads files as YAML 1.2, where `yes` is
 * a string, and turns these spellings into booleans only where the field is a boolean, so a
 * string field (a label value, a cluster name) holding "yes" stays "yes".
 */
const GO_YAML_BOOLEANS: ReadonlyMap<string, boolean> = new Map(
  [
    ...['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'TRUE'].map((s) => [s, true] as const),
    ...['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'false', 'False', 'FALSE'].map((s) => [s, false] as const),
  ],
);

/** The boolean a Go YAML boolean spelling stands for, or undefined for anything else. */
export function goYamlBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' ? GO_YAML_BOOLEANS.get(value) : undefined;
}

/** Every spelling goYamlBoolean accepts, for tests and messages. */
export const GO_YAML_BOOLEAN_SPELLINGS: readonly string[] = [...GO_YAML_BOOLEANS.keys()];

/** A boolean field that also takes Go YAML's spellings (`yes`, `off`, `On`, ...). */
export const yamlBoolean = z.preprocess((v) => goYamlBoolean(v) ?? v, z.boolean());
