#!/usr/bin/env bash
# Demo accounts for `make run` (the demo region only): made once per data directory, with random
# passwords written to DATA/demo-accounts.txt (mode 600) and printed. Usage: demo-accounts.sh ROR DATA
set -euo pipefail
ror=${1:?ror binary}; data=${2:?data dir}
file=$data/demo-accounts.txt
mkdir -p "$data"
[[ -s $file ]] && { echo "Comptes de démonstration : voir $file"; exit 0; }
umask 077
accounts=(
  "ars|ars-admin|Administrateur ARS (toute la région)"
  "regulation|reader|Régulateur SAMU (lecture, profil 4)"
  "pitie-gestion|establishment-manager:750999039|Gestionnaire, Pitié-Salpêtrière"
  "pitie-lits|bed-declarer:750999039|Déclarant de lits, Pitié-Salpêtrière"
)
{
  echo "# Comptes de démonstration (région fictive) — identifiant / mot de passe / rôle"
  for a in "${accounts[@]}"; do
    IFS='|' read -r login role label <<<"$a"
    pw=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    if printf '%s\n' "$pw" | "$ror" user add "$login" --role "$role" --name "$label" \
         --password-stdin --data "$data" --author demo >/dev/null 2>&1; then
      printf '%-14s %s  %s\n' "$login" "$pw" "$label"
    fi
  done
} >"$file.new"
if [[ $(wc -l <"$file.new") -gt 1 ]]; then
  mv "$file.new" "$file"
  cat "$file"
else # accounts exist already, or the data directory is held by a running server
  rm -f "$file.new"
  echo "Comptes de démonstration non créés (déjà présents, ou serveur en cours sur $data)"
fi
