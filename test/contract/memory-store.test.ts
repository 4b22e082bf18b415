import { MemoryStore } from '../../src/state/memory-store.js';
import { openStore } from '../../src/state/index.js';
import { storeContract } from './store.contract.js';

storeContract('memory', () => new MemoryStore());
storeContract('memory via openStore', () => openStore('memory'));
