#!/usr/bin/env python3
"""Write the etalab FINESS fixtures of tests/unit/import/test_finess.c, and expected.json.

How the fixtures were made (no raw etalab CSV is available, SOURCE.md of shared/data/finess):

* Metropolitan rows (etalab-sample-latin1.csv / etalab-sample-utf8.csv) are REAL establishments
  of the national FHIR set shared/data/finess/fhir-20210108/*.tar.gz (FINESS extract of
  2021-01-08): their FINESS numbers, raison sociale (as written in the CSV, quotes included),
  address, phone, categories, SIRET, APE, SPH, opening and update dates. The address line is
  split back into numvoie / typvoie (codes of NOS TRE_R35) / voie / lieuditbp. Fields the FHIR
  set does not carry (rslongue, fax, MFT, dateautor) are left empty.
* Their INSEE commune codes come from La Poste's base (shared/data/communes/
  laposte_hexasmal_2020-11.csv) looked up by postal code and routing label; the two CEDEX
  addresses of the selection are set by hand (INSEE_BY_HAND).
* Their Lambert-93 X/Y are the FHIR set's WGS84 positions projected forward here with IGN's
  Lambert conformal conic formulas (latitude isométrique ALG0001, projection ALG0003, secant
  constants ALG0054) on GRS80 — deliberately not PROJ, which the parser under test uses.
* Overseas rows (etalab-overseas.csv) are FICTITIOUS establishments (FINESS numbers 9700999xx)
  placed at the real centres of their communes (shared/data/communes/geo-api-communes-centres-
  2021-04-01.json), projected forward with the Krüger series of the transverse Mercator (UTM)
  implemented here. Some rows carry a wrong or unknown projection on purpose.
* The EJ file (etalab-ej.csv) has the real EJ numbers of the selected ETs; the other EJ fields
  (names, statuts, SIREN, dates) are illustrative.
* etalab-bad.csv holds one bad line of each kind the parser must reject, next to good ones;
  etalab-truncated.csv ends in the middle of a line, without a newline.

expected.json records, independently of the parser: names, INSEE codes and WGS84 positions
(FHIR set / commune centres), and the lines that must be rejected or warned about.

Run: python3 tests/data/finess/make_fixture.py   (needs ../shared next to the repository,
or ROR_SHARED_DIR). The output is deterministic.
"""
import csv
import glob
import json
import math
import os
import re
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("ROR_SHARED_DIR") or os.path.join(HERE, "..", "..", "..", "..", "shared")

# The real establishments of the sample: FINESS ET numbers in the FHIR set.
SELECTION = [
    "010000024",  # CH DE FLEYRIAT (centre hospitalier, Viriat)
    "010000032",  # CH HAUT BUGEY (BP in the address)
    "010002517",  # PHARMACIE D'ATTIGNAT (pharmacy, apostrophe)
    "010007359",  # RÉSIDENCE LES FONTAINES D'OR (accent + apostrophe)
    "010786101",  # EHPAD "LE CORNILLON" (EHPAD, quotes in the name)
    "010008944",  # LBM MIRIALIS ST GÉNIS POUILLY (laboratory)
    "060789195",  # CHU DE NICE HOPITAL DE L'ARCHET (CHU)
    "750100125",  # HU PITIE SALPETRIERE APHP (CHU, CEDEX, Paris arrondissement)
    "130780521",  # APHM HOPITAL NORD (Marseille arrondissement)
    "2A0003281",  # EHPAD DU CH AJACCIO (Corse-du-Sud)
    "2B0000012",  # CENTRE HOSPITALIER DE BASTIA (Haute-Corse, CEDEX, BP only)
    "600010094",  # SSR HL CRÈVECOEUR-LE-GRAND (accents in name and street)
    "730000288",  # CH DE MODANE: no position in the FHIR set, so no geolocalisation row
]
# CEDEX routing labels are not in La Poste's base of communes.
INSEE_BY_HAND = {"750100125": "75113", "2B0000012": "2B033"}

SRC_OLD = "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,LAMBERT_93"
SRC_NEW = "1,ATLASANTE,100,IGN,BAN,EPSG:2154 RGF93 / Lambert-93 (Métropole)"

# ---------------------------------------------------------------------------- projections

A = 6378137.0
F = 1 / 298.257222101  # GRS80
E = math.sqrt(F * (2 - F))


def iso_lat(phi):
    """IGN ALG0001: latitude isométrique."""
    s = math.sin(phi)
    return math.log(math.tan(math.pi / 4 + phi / 2) * ((1 - E * s) / (1 + E * s)) ** (E / 2))


def big_n(phi):
    return A / math.sqrt(1 - (E * math.sin(phi)) ** 2)


def lambert93(lat, lon):
    """IGN ALG0054 (secant constants) + ALG0003 (projection) for Lambert-93."""
    p1, p2, p0 = math.radians(44), math.radians(49), math.radians(46.5)
    lc, x0, y0 = math.radians(3), 700000.0, 6600000.0
    l1, l2 = iso_lat(p1), iso_lat(p2)
    n = math.log(big_n(p2) * math.cos(p2) / (big_n(p1) * math.cos(p1))) / (l1 - l2)
    c = big_n(p1) * math.cos(p1) / n * math.exp(n * l1)
    xs, ys = x0, y0 + c * math.exp(-n * iso_lat(p0))
    r = c * math.exp(-n * iso_lat(math.radians(lat)))
    g = n * (math.radians(lon) - lc)
    return xs + r * math.sin(g), ys - r * math.cos(g)


def utm(lat, lon, zone, south):
    """Transverse Mercator by the Krüger series (4th order in n), UTM parameters, GRS80."""
    n = F / (2 - F)
    big_a = A / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    alpha = [
        n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16 + 41 * n**4 / 180,
        13 * n**2 / 48 - 3 * n**3 / 5 + 557 * n**4 / 1440,
        61 * n**3 / 240 - 103 * n**4 / 140,
        49561 * n**4 / 161280,
    ]
    phi = math.radians(lat)
    dl = math.radians(lon - (zone * 6 - 183))
    t = math.sinh(math.atanh(math.sin(phi)) - E * math.atanh(E * math.sin(phi)))
    xi1 = math.atan2(t, math.cos(dl))
    eta1 = math.atanh(math.sin(dl) / math.sqrt(1 + t * t))
    xi = xi1 + sum(a * math.sin(2 * j * xi1) * math.cosh(2 * j * eta1) for j, a in enumerate(alpha, 1))
    eta = eta1 + sum(a * math.cos(2 * j * xi1) * math.sinh(2 * j * eta1) for j, a in enumerate(alpha, 1))
    k0 = 0.9996
    return 500000 + k0 * big_a * eta, (10000000 if south else 0) + k0 * big_a * xi


# ---------------------------------------------------------------------------- sources


def load_fhir(selection):
    orgs, locs = {}, {}
    for path in sorted(glob.glob(os.path.join(SHARED, "data/finess/fhir-20210108/*.tar.gz"))):
        with tarfile.open(path) as t:
            for m in t:
                if not m.isfile():
                    continue
                for line in t.extractfile(m):
                    r = json.loads(line)
                    if r["resourceType"] == "Organization":
                        et = r["id"].split("-")[1]
                        if et in selection:
                            orgs[et] = r
                    else:
                        et = r["managingOrganization"]["reference"].split("-")[-1]
                        if et in selection:
                            locs[et] = r
    return orgs, locs


def load_laposte():
    out = {}
    with open(os.path.join(SHARED, "data/communes/laposte_hexasmal_2020-11.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter=";"):
            out.setdefault((row["Code_postal"], row["Libellé_d_acheminement"]), set()).add(row["Code_commune_INSEE"])
    return out


def load_typvoie():
    with open(os.path.join(SHARED, "spec/nos/TRE/TRE_R35_TypeVoie.json"), encoding="utf-8") as f:
        return {c["code"] for c in json.load(f)["concept"]}


def load_departements():
    with open(os.path.join(SHARED, "data/communes/decoupage-administratif-6.0.0/departements.json"), encoding="utf-8") as f:
        return {d["code"]: d["nom"] for d in json.load(f)}


def load_centres():
    with open(os.path.join(SHARED, "data/communes/geo-api-communes-centres-2021-04-01.json"), encoding="utf-8") as f:
        return {c["code"]: c["centre"]["coordinates"] for c in json.load(f) if c.get("centre")}


# ---------------------------------------------------------------------------- CSV writing


def unquote(s):
    """The text of a field as the FHIR set kept it: CSV-quoted when it held quotes."""
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1].replace('""', '"')
    return s


def csv_field(s):
    if '"' in s or ";" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def libdep(deps, dept):
    name = deps.get(dept, "")
    return name.upper().replace("-", " ")[:24]


def split_line(lines, typvoie):
    """'900 RTE DE PARIS', 'BP 139' -> numvoie, typvoie, voie, lieuditbp."""
    street, lieudit = (lines + ["", ""])[:2]
    if re.match(r"^(BP|CS|TSA) ", street) and not lieudit:
        return "", "", "", street
    m = re.match(r"^(\d{1,4}) (.*)$", street)
    num, rest = (m.group(1), m.group(2)) if m else ("", street)
    words = rest.split(" ", 1)
    if len(words) == 2 and words[0] in typvoie:
        return num, words[0], words[1], lieudit
    if not num and not lieudit:
        return "", "", "", rest  # a lieu-dit alone ("LE MOLLARD")
    return num, "", rest, lieudit


def coding(org, suffix):
    for c in org["type"][0]["coding"]:
        if c["system"].endswith(suffix):
            return c["code"], c.get("display", "")
    return "", ""


def structureet(et, ej, rs, street, dept, deps, commune, routing, phone, org):
    num, typ, voie, lieudit = street
    cat, libcat = coding(org, "CAT_ETAB")
    agr, libagr = coding(org, "CAT_AGR_ETAB")
    ape, _ = coding(org, "InseeNAFrev2Niveau5")
    sph, libsph = coding(org, "SPH")
    siret = next((i["value"] for i in org["identifier"] if i["system"].endswith("sirene.fr")), "")
    dateouv = next((x["valuePeriod"]["start"] for x in org.get("extension", [])), "")
    datemaj = org["meta"]["lastUpdated"][:10]
    fields = [
        "structureet", et, ej, rs, "", "", "", num, typ, voie, "", lieudit, commune, dept,
        libdep(deps, dept), routing, phone, "", cat, libcat, agr, libagr, siret, ape, "", "",
        sph, libsph, dateouv, "", datemaj, "",
    ]
    assert len(fields) == 32
    return ";".join(f if f is rs else csv_field(f) for f in fields)


def write(path, lines, encoding, newline="\n", final_newline=True):
    text = newline.join(lines) + (newline if final_newline else "")
    with open(path, "wb") as f:
        f.write(text.encode(encoding))


def main():
    typvoie = load_typvoie()
    laposte = load_laposte()
    deps = load_departements()
    centres = load_centres()
    orgs, locs = load_fhir(set(SELECTION))
    assert len(orgs) == len(SELECTION), sorted(set(SELECTION) - set(orgs))

    expected = {"sample": [], "overseas": [], "ej": [], "bad": {}, "truncated": {}}
    et_lines, geo_lines = [], []
    for i, et in enumerate(SELECTION):
        org = orgs[et]
        ej = org["id"].split("-")[0]
        addr = org["address"][0]
        street = split_line(addr["line"], typvoie)
        insee = INSEE_BY_HAND.get(et)
        if not insee:
            found = laposte.get((addr["postalCode"], addr["city"]), set())
            assert len(found) == 1, (et, addr, found)
            insee = found.pop()
        dept, commune = insee[:2], insee[2:]
        phone = next((t["value"] for t in org.get("telecom", []) if t["system"] == "phone"), "")
        routing = addr["postalCode"] + " " + addr["city"]
        et_lines.append(structureet(et, ej, org["name"], street, dept, deps, commune, routing, phone, org))
        pos = locs.get(et, {}).get("position")
        if pos:
            x, y = lambert93(pos["latitude"], pos["longitude"])
            src = SRC_NEW if i % 3 == 1 else SRC_OLD
            geo_lines.append(f"geolocalisation;{et};{x:.1f};{y:.1f};{src};2020-12-15")
        expected["sample"].append({
            "nofinesset": et, "nofinessej": ej, "name": unquote(org["name"]), "insee": insee,
            "postalCode": addr["postalCode"], "city": addr["city"],
            "latitude": pos["latitude"] if pos else None,
            "longitude": pos["longitude"] if pos else None,
        })
    manifest = "finess;etalab;111;2021-01-08"
    sample = [manifest] + et_lines + geo_lines
    # The latin-1 file as the historical extracts: ISO-8859-1 (here Windows-1252), CRLF.
    write(os.path.join(HERE, "etalab-sample-latin1.csv"), sample, "cp1252", "\r\n")
    write(os.path.join(HERE, "etalab-sample-utf8.csv"), sample, "utf-8")

    # ------------------------------------------------------------------ overseas
    # (FINESS ET, dept, commune field, INSEE, name, projection named, how X/Y are made, outcome)
    overseas = [
        ("970099901", "9D", "411", "97411", "CENTRE DE SANTÉ TEST ST DENIS", "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,UTM_S40", ("utm", 40, True), "position"),
        ("970099902", "9D", "416", "97416", "MAISON DE SANTÉ L’ŒILLET TEST", "1,ATLASANTE,100,IGN,BAN,EPSG:2975 RGR92 / UTM zone 40S (Réunion)", ("utm", 40, True), "position"),
        ("970099903", "9A", "120", "97120", "PHARMACIE TEST POINTE A PITRE", "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,UTM_N20", ("utm", 20, False), "position"),
        ("970099904", "9B", "209", "97209", "EHPAD TEST FORT DE FRANCE", "", ("utm", 20, False), "position"),
        ("970099905", "9C", "302", "97302", "CENTRE TEST CAYENNE", "1,ATLASANTE,100,IGN,BAN,EPSG:2972", ("utm", 22, False), "position"),
        ("970099906", "9F", "611", "97611", "DISPENSAIRE TEST MAMOUDZOU", "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,UTM_S38", ("utm", 38, True), "position"),
        # UTM 40S coordinates labelled Lambert-93: must not be placed
        ("970099907", "9D", "422", "97422", "CENTRE TEST LE TAMPON", "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,LAMBERT_93", ("utm", 40, True), "warning"),
        # a projection the parser does not know
        ("970099908", "9A", "105", "97105", "CENTRE TEST BASSE TERRE", "1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,GAUSS_LABORDE_STE_ANNE", ("utm", 20, False), "warning"),
        # Lambert-93 numbers given for Réunion with no projection named: outside UTM 40S's area
        ("970099909", "9D", "410", "97410", "CENTRE TEST ST BENOIT", "", ("fixed", 652000.0, 6862000.0), "warning"),
        # Saint-Martin: FINESS code 97127 under 9A, COG 97801; no geolocalisation row
        ("970099910", "9A", "127", "97801", "CENTRE TEST ST MARTIN", None, None, "none"),
    ]
    o_et, o_geo = [], []
    for et, dept, commune, insee, name, src, how, outcome in overseas:
        fields = ["structureet", et, "970099900", name, "", "", "", "1", "R", "DE LA REPUBLIQUE", "",
                  "", commune, dept, {"9A": "GUADELOUPE", "9B": "MARTINIQUE", "9C": "GUYANE",
                                      "9D": "LA REUNION", "9F": "MAYOTTE"}[dept],
                  f"97{commune[0]}00 COMMUNE TEST", "0262000000", "", "604", "Centre de Santé", "2104",
                  "Centres de Santé", "", "", "", "", "", "", "2001-01-01", "", "2020-12-01", ""]
        o_et.append(";".join(fields))
        lat = lon = None
        if how:
            lonc, latc = centres.get(insee, centres.get("97411"))
            if how[0] == "utm":
                x, y = utm(latc, lonc, how[1], how[2])
            else:
                x, y = how[1], how[2]
            o_geo.append(f"geolocalisation;{et};{x:.1f};{y:.1f};{src};2020-12-15")
            if outcome == "position":
                lat, lon = latc, lonc
        expected["overseas"].append({"nofinesset": et, "insee": insee, "name": name,
                                     "latitude": lat, "longitude": lon, "outcome": outcome})
    write(os.path.join(HERE, "etalab-overseas.csv"), [manifest] + o_et + o_geo, "cp1252")

    # ------------------------------------------------------------------ EJ (cs1100501)
    ejs = []
    for et in SELECTION[:4] + ["060789195", "750100125"]:
        ej = orgs[et]["id"].split("-")[0]
        if ej not in [e[0] for e in ejs]:
            ejs.append((ej, et))
    ej_lines, expected_ej = [manifest], []
    for n, (ej, et) in enumerate(ejs):
        org = orgs[et]
        addr = org["address"][0]
        num, typ, voie, lieudit = split_line(addr["line"], typvoie)
        insee = next(e["insee"] for e in expected["sample"] if e["nofinesset"] == et)
        name = f"ENTITE JURIDIQUE TEST {n + 1}"
        fields = ["structureej", ej, name, f"ENTITÉ JURIDIQUE D'ESSAI N° {n + 1}", "", num, typ, voie, "", "",
                  lieudit, insee[2:], addr["postalCode"] + " " + addr["city"], insee[:2],
                  libdep(deps, insee[:2]), "0400000000", "13",
                  "Etb.Pub.Commun.Hosp.", "", "", "2600000" + str(10 + n), "8610Z", "1990-01-0" + str(1 + n)]
        line = ";".join(csv_field(f) for f in fields)
        if n == 1:
            line += ";"  # a trailing separator: tolerated
        ej_lines.append(line)
        expected_ej.append({"nofiness": ej, "insee": insee, "name": fields[3], "siren": fields[20]})
    bad_ej = ["structureej", "010780099", "EJ TEST DATE", "", "", "", "", "", "", "", "", "451",
              "01440 VIRIAT", "01", "AIN", "", "13", "", "", "", "", "", "1990-02-30"]
    ej_lines.append(";".join(bad_ej))
    expected["ej"] = {"resources": expected_ej, "rejects": [{"line": len(ej_lines), "contains": "date de création"}]}
    write(os.path.join(HERE, "etalab-ej.csv"), ej_lines, "cp1252", "\r\n")

    # ------------------------------------------------------------------ bad lines
    good = et_lines[:3]
    g0 = et_lines[0].split(";")
    bad, rejects = [manifest] + good, []

    def add(line, why):
        bad.append(line)
        if why:
            rejects.append({"line": len(bad), "contains": why})

    add(";".join(g0[:20]), "champs au lieu de 32")
    add(";".join(g0[:1] + ["01000002X"] + g0[2:]), "numéro FINESS ET invalide")
    add(";".join(["structurexx"] + g0[1:]), "section inconnue")
    add(";".join(g0[:3] + ['"CH SANS FIN DE GUILLEMET'] + g0[4:]), "guillemet non fermé")
    add(";".join(g0[:1] + ["010099998"] + g0[2:28] + ["2020-13-45"] + g0[29:]), "date d'ouverture invalide")
    add(";".join(g0[:1] + ["010099997"] + g0[2:30] + [""] + g0[31:]), "date de mise à jour manquante")
    add(et_lines[1], "déjà vu ligne 3")  # duplicate of the second ET
    add(";".join(g0[:1] + ["010099996"] + g0[2:12] + ["45"] + g0[13:]), "code commune invalide")
    add(";".join(g0[:1] + ["010099995"] + g0[2:13] + ["9Z"] + g0[14:]), "département inconnu")
    add("finess;etalab;111;2021-01-08", "ligne d'en-tête inattendue")
    add(et_lines[2] + ";;", "champs au lieu de 32")
    add("", None)  # blank lines are ignored
    geo = [g for g in geo_lines if g.split(";")[1] in (SELECTION[0], SELECTION[1], SELECTION[2])]
    add(geo[0], None)
    add(geo[1].replace(geo[1].split(";")[2], "abc", 1), "coordonnées invalides")
    add("geolocalisation;999999999;869000.0;6570000.0;" + SRC_OLD + ";2020-12-15", "établissement inconnu")
    add(geo[0], "géolocalisation en double")
    add(geo[2].replace("2020-12-15", "15/12/2020"), "date de mise à jour des coordonnées invalide")
    add("geolocalisation;010002517;869000.0", "champs au lieu de 6")
    write(os.path.join(HERE, "etalab-bad.csv"), bad, "cp1252")
    expected["bad"] = {
        "rejects": rejects,
        # 3 EG from the good rows; their Locations: one placed, two at the end without position
        "organizations": [SELECTION[0], SELECTION[1], SELECTION[2]],
        "placed": [SELECTION[0]],
    }

    # ------------------------------------------------------------------ truncated
    cut = geo_lines[1]
    trunc = [manifest] + et_lines[:3] + [geo_lines[0], cut[: len(cut) // 3]]
    write(os.path.join(HERE, "etalab-truncated.csv"), trunc, "cp1252", final_newline=False)
    expected["truncated"] = {"line": len(trunc), "organizations": SELECTION[:3], "placed": [SELECTION[0]]}

    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")

    # Self-check of the two projections against published reference points: the origin of
    # Lambert-93 and the central meridian of a UTM zone at the equator.
    x, y = lambert93(46.5, 3.0)
    assert abs(x - 700000) < 1e-6 and abs(y - 6600000) < 1e-6
    x, y = utm(0.0, 57.0, 40, False)
    assert abs(x - 500000) < 1e-6 and abs(y) < 1e-6


if __name__ == "__main__":
    main()
