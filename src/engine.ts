// The engine lives in src/engine/ (index.ts wires its parts); this path stays for its importers.
export { bucketMsFor, exitCodeOf, formatSummary, runEngine, type EngineOptions, type GroupShare, type PositionsPort, type Summary } from './engine/index.js';
