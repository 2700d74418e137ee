/**
 * Imported by a campaign's worker threads (CampaignTestingAids.plant) to plant deliberate bugs in
 * that thread's firmware: the bugs come in the module URL's query, `?bugs=a,b`.
 */
import { PLANTED_BUGS, plantAll, type PlantedBug } from './planted-bugs.ts';

const asked = new URL(import.meta.url).searchParams.get('bugs')?.split(',') ?? [];
const unknown = asked.filter((b) => !PLANTED_BUGS.includes(b as PlantedBug));
if (unknown.length > 0) throw new Error(`planted-bugs-module: unknown bugs ${unknown.join(', ')}`);
plantAll(asked as PlantedBug[]);
