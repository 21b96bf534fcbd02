// bench/capacity/units.mjs — N RORLocation units with two bed indicators each (installed 01,
// available 02), shaped like the demo Locations (data/demo/demo-region.json): ror-commune-cog,
// ror-meta-creation-date, region tag, identifiers, address with INSEE code. Units are spread
// over 20 communes of 20 départements (round robin), so that département filters select 1/20.
//
//   node units.mjs N OUT.ndjson    writes N Locations, one per line, ids bench-cap-000001...
//   node units.mjs N -             the same on stdout
// Prints nothing else; the ids, départements and indicator keys are derived by the other
// scripts from unitId(i) / COMMUNES below (imported, not re-parsed).
import { createWriteStream } from 'node:fs';

const NOS = 'https://mos.esante.gouv.fr/NOS/';
const ROR_SD = 'https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/';
const TRE = {
  capacityType: `${NOS}TRE_R329-NatureCapacite/FHIR/TRE-R329-NatureCapacite`,
  capacityStatus: `${NOS}TRE_R330-TypeStatutCapacite/FHIR/TRE-R330-TypeStatutCapacite`,
  temporalityCapacity: `${NOS}TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite`,
  genderCapacityAvailable: `${NOS}TRE_R332-GenreCapacite/FHIR/TRE-R332-GenreCapacite`,
  temporaryAssignement: `${NOS}TRE_R337-AffectationTemporaire/FHIR/TRE-R337-AffectationTemporaire`,
  capacitySourceType: `${NOS}TRE_R335-TypeSourceCapacite/FHIR/TRE-R335-TypeSourceCapacite`,
};

// [INSEE code, city, postal code, region code, latitude, longitude]
export const COMMUNES = [
  ['75113', 'Paris', '75013', '11', 48.8387, 2.3637],
  ['94028', 'Créteil', '94000', '11', 48.7904, 2.4556],
  ['13055', 'Marseille', '13005', '93', 43.2965, 5.3698],
  ['69123', 'Lyon', '69003', '84', 45.7640, 4.8357],
  ['31555', 'Toulouse', '31300', '76', 43.6047, 1.4442],
  ['33063', 'Bordeaux', '33000', '75', 44.8378, -0.5792],
  ['59350', 'Lille', '59000', '32', 50.6292, 3.0573],
  ['67482', 'Strasbourg', '67000', '44', 48.5734, 7.7521],
  ['44109', 'Nantes', '44000', '52', 47.2184, -1.5536],
  ['06088', 'Nice', '06000', '93', 43.7102, 7.2620],
  ['34172', 'Montpellier', '34000', '76', 43.6108, 3.8767],
  ['35238', 'Rennes', '35000', '53', 48.1173, -1.6778],
  ['76540', 'Rouen', '76000', '28', 49.4432, 1.0999],
  ['21231', 'Dijon', '21000', '27', 47.3220, 5.0415],
  ['87085', 'Limoges', '87000', '75', 45.8336, 1.2611],
  ['63113', 'Clermont-Ferrand', '63000', '84', 45.7772, 3.0870],
  ['45234', 'Orléans', '45000', '24', 47.9030, 1.9093],
  ['2A004', 'Ajaccio', '20000', '94', 41.9192, 8.7386],
  ['97411', 'Saint-Denis', '97400', '04', -20.8821, 55.4507],
  ['29019', 'Brest', '29200', '53', 48.3904, -4.4861],
];
export const departementOf = (insee) => insee.slice(0, insee.startsWith('97') ? 3 : 2);

export const unitId = (i) => `bench-cap-${String(i + 1).padStart(6, '0')}`;
export const communeOf = (i) => COMMUNES[i % COMMUNES.length];
/** The dimensions of the two indicators every unit carries (status 01 installed, 02 available). */
export const INDICATORS = [
  { capacityType: '01', capacityStatus: '01', temporalityCapacity: '01', temporaryAssignement: '01' },
  { capacityType: '01', capacityStatus: '02', temporalityCapacity: '01', genderCapacityAvailable: '03', temporaryAssignement: '01' },
];
const DIM_ORDER = ['capacityType', 'capacityStatus', 'temporalityCapacity', 'genderCapacityAvailable',
  'capacityClosingType', 'additionalBedType', 'crisisType', 'temporaryAssignement'];
/** The server's key of an indicator (its eight dimension codes, '-' when absent), from the guide. */
export const keyOf = (dims) => DIM_ORDER.map((d) => dims[d] ?? '-').join('|');

const concept = (url, code) => ({ url, valueCodeableConcept: { coding: [{ system: TRE[url], code }] } });

function capacity(dims, nb) {
  const ext = Object.entries(dims).map(([k, v]) => concept(k, v));
  ext.push({ url: 'nbCapacity', valueInteger: nb });
  ext.push(concept('capacitySourceType', '01'));
  ext.push({ url: 'capacityUpdateDate', valueDateTime: '2026-01-15T08:30:00+01:00' });
  return { url: `${ROR_SD}ror-location-supported-capacity`, extension: ext };
}

export function unit(i) {
  const [insee, city, cp, region, lat, lon] = communeOf(i);
  const commune = { system: `${NOS}TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM`, code: insee, display: city };
  const idType = (code) => ({ coding: [{ system: `${NOS}TRE_R354-TypeIdentifiantRessourceOperationnelle/FHIR/TRE-R354-TypeIdentifiantRessourceOperationnelle`, code }] });
  const installed = 10 + (i % 31);
  return {
    resourceType: 'Location',
    id: unitId(i),
    meta: {
      profile: [`${ROR_SD}ror-location`],
      tag: [{ system: `${NOS}TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM`, code: region }],
    },
    extension: [
      { url: `${ROR_SD}ror-commune-cog`, valueCodeableConcept: { coding: [commune] } },
      { url: `${ROR_SD}ror-meta-creation-date`, valueDateTime: '2026-01-01T09:00:00+01:00' },
      capacity(INDICATORS[0], installed),
      capacity(INDICATORS[1], i % 7),
    ],
    identifier: [
      { type: idType('25'), value: `${region}/LB${String(i + 1).padStart(7, '0')}` },
      { type: idType('26'), value: `BENCH${String(i + 1).padStart(6, '0')}/UNIT` },
    ],
    status: 'active',
    operationalStatus: { system: `${NOS}TRE_R203-StatutLieu/FHIR/TRE-R203-StatutLieu`, code: '3' },
    name: `Unité de test ${i + 1} - ${city}`,
    type: [{ coding: [{ system: `${NOS}TRE_R343-FonctionLieu/FHIR/TRE-R343-FonctionLieu`, code: '001' }] }],
    address: {
      extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: commune }],
      use: 'work', type: 'both', line: [`${1 + (i % 200)} rue de l'Hôpital`], city, postalCode: cp, country: 'FR',
    },
    position: { longitude: lon + ((i * 37) % 100) / 10000, latitude: lat + ((i * 53) % 100) / 10000 },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2]);
  const out = process.argv[3];
  if (!Number.isInteger(n) || n < 1 || !out) {
    console.error('usage: node units.mjs N OUT.ndjson|-');
    process.exit(2);
  }
  const w = out === '-' ? process.stdout : createWriteStream(out);
  for (let i = 0; i < n; i++) w.write(`${JSON.stringify(unit(i))}\n`);
  if (w !== process.stdout) w.end();
}
