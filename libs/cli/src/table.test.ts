import { describe, expect, it } from 'vitest';
import { formatTable } from './table.js';

describe('formatTable', () => {
  it('pads every column to its widest cell and underlines the header', () => {
    expect(formatTable(['Name', 'Labels'], [['dev', 'env=dev'], ['production-1', '']])).toBe(
      'Name          Labels\n------------  -------\ndev           env=dev\nproduction-1\n',
    );
  });

  it('prints just the header for no rows, and takes another gap', () => {
    expect(formatTable(['A', 'Bee'], [], { gap: ' ' })).toBe('A Bee\n- ---\n');
  });
});
