/** The entry of a destination's sender thread (forward/thread.ts). */
import { systemClock } from '../lib/clock.js';
import { serveSender } from './thread.js';

serveSender(systemClock);
