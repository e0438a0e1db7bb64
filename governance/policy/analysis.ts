import type { Analysis } from '../../analyzer/types.js';
import type { StatementsInput } from './types.js';

/** The analyzer's result as the engine's input: the statements, or the parse failure. */
export function statementsOf(analysis: Analysis): StatementsInput {
  return analysis.ok ? analysis.statements : { parseError: analysis.error };
}
