#!/usr/bin/env bash
# Lays out a minimal root filesystem from Debian's busybox-static in DIR:
# busybox and its applet links, /etc/passwd and /etc/group, a web root.
# Used by the demo and by the test fixtures; needs no network.
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "busybox-rootfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
file "$busybox" 2>/dev/null | grep -q "statically linked" || ldd "$busybox" 2>&1 | grep -q "not a dynamic" || {
  echo "busybox-rootfs: $busybox is not static (install busybox-static)" >&2; exit 1; }

mkdir -p "$dir"/{bin,etc,tmp,root,www,home/app}
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
audio:x:29:app
nogroup:x:65534:
GROUP
echo "hello from berth's demo web server" > "$dir/www/index.html"
chown 1000:1000 "$dir/home/app"
