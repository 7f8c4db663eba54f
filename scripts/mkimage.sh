#!/usr/bin/env bash
# Builds an image from layer directories (base first), offline, with
# coreutils only: an OCI image layout (gzip layers) or a legacy
# docker-archive tarball (uncompressed layers), as `docker save` wrote it.
#
#   mkimage.sh --format oci|docker-archive --ref REF [--cmd JSON] OUT LAYERDIR...
#
# Whiteouts are ordinary files named .wh.NAME / .wh..wh..opq in a layer dir.
set -euo pipefail
format=oci ref= cmd='["/bin/sh"]'
while [ $# -gt 0 ]; do
  case $1 in
    --format) format=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --cmd) cmd=$2; shift 2 ;;
    *) break ;;
  esac
done
out=${1:?usage: mkimage.sh --format F --ref REF OUT LAYERDIR...}; shift
[ $# -ge 1 ] || { echo "mkimage: no layer directories" >&2; exit 2; }
[ -n "$ref" ] || { echo "mkimage: --ref is required" >&2; exit 2; }
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
put_blob() { local h; h=$(sha "$1"); mv "$1" "$work/blobs/sha256/$h"; echo "$h"; }

diff_ids=() layer_blobs=() layer_sizes=()
for dir in "$@"; do
  # File capabilities travel as the security.capability xattr (a pax
  # header), as in images docker builds. The pax options keep the layer
  # reproducible: no pid in header names, no atime or ctime.
  tar --numeric-owner --sort=name --mtime=@0 --xattrs --xattrs-include=security.capability \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$dir" -cf "$work/layer.tar" .
  diff_ids+=("$(sha "$work/layer.tar")")
  if [ "$format" = oci ]; then gzip -n -c "$work/layer.tar" > "$work/layer.blob"; rm "$work/layer.tar"
  else mv "$work/layer.tar" "$work/layer.blob"; fi
  layer_sizes+=("$(stat -c %s "$work/layer.blob")")
  layer_blobs+=("$(put_blob "$work/layer.blob")")
done

join() { local IFS=,; echo "$*"; }
ids=(); for d in "${diff_ids[@]}"; do ids+=("\"sha256:$d\""); done
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$arch" "$cmd" "$(join "${ids[@]}")" > "$work/config.json"
config_size=$(stat -c %s "$work/config.json")
config=$(put_blob "$work/config.json")

if [ "$format" = oci ]; then
  layers=()
  for i in "${!layer_blobs[@]}"; do
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:${layer_blobs[$i]}\",\"size\":${layer_sizes[$i]}}")
  done
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config" "$config_size" "$(join "${layers[@]}")" > "$work/manifest.json"
  msize=$(stat -c %s "$work/manifest.json")
  manifest=$(put_blob "$work/manifest.json")
  tag=${ref##*:}
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$msize" "$ref" "$tag" > "$work/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
  rm -rf "$out"; mkdir -p "$out"
  cp -r "$work/blobs" "$work/index.json" "$work/oci-layout" "$out/"
else
  arch_dir="$work/archive"; mkdir -p "$arch_dir"
  cp "$work/blobs/sha256/$config" "$arch_dir/$config.json"
  paths=()
  for h in "${layer_blobs[@]}"; do
    mkdir -p "$arch_dir/$h"; cp "$work/blobs/sha256/$h" "$arch_dir/$h/layer.tar"; echo 1.0 > "$arch_dir/$h/VERSION"
    paths+=("\"$h/layer.tar\"")
  done
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$config" "$ref" "$(join "${paths[@]}")" > "$arch_dir/manifest.json"
  tar -C "$arch_dir" -cf "$out" .
fi
