#!/usr/bin/env bash
# The GPU kit's host part, into the folder DIR: the 'cpu' addon as built here (native/build, with
# the MPI process group) and the shared libraries it needs beyond glibc and the C++ runtime
# (oneDNN, Open MPI, hwloc, libevent), and this machine's Open MPI runtime (mpirun, its MCA
# components, PMIx and help files), laid out to run from any folder (scripts/gpu/host_env.sh). The
# GPU machine has no MPI; with this, two processes there share its GPU through the 'mpi' group.
#   bash scripts/gpu/pack_host.sh DIR
# Components that need a fabric library (InfiniBand, libfabric, UCX, PSM) are left out: the kit's
# ranks share one host, over shared memory and loopback TCP.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:?usage: pack_host.sh DIR}
ADDON=${NODEGRAD_BUILD_DIR:-native/build}/Release/nodegrad.node
ARCH=/usr/lib/x86_64-linux-gnu
OMPI=$ARCH/openmpi
PMIX=$ARCH/pmix2
for f in "$ADDON" "$OMPI/lib/openmpi3" "$PMIX/lib/pmix" /usr/bin/orterun /usr/share/openmpi; do
  [ -e "$f" ] || { echo "pack_host: $f is missing (build native/ with libopenmpi-dev and openmpi-bin installed)" >&2; exit 1; }
done
rm -rf "$DIR" && mkdir -p "$DIR"/{addon/Release,lib,bin,etc,openmpi,pmix,share/openmpi,share/pmix}
cp "$ADDON" "$DIR/addon/Release/"
cp /usr/bin/orterun "$DIR/bin/mpirun"
cp /usr/bin/orted "$DIR/bin/"
cp "$OMPI"/lib/openmpi3/*.so "$DIR/openmpi/"
cp "$PMIX"/lib/pmix/*.so "$DIR/pmix/"
cp /usr/share/openmpi/help-*.txt "$DIR/share/openmpi/"
cp "$PMIX"/share/pmix/help-*.txt "$DIR/share/pmix/"
# Empty: the system's files name system paths; host_env.sh sets what the kit needs.
: > "$DIR/etc/openmpi-mca-params.conf"
: > "$DIR/etc/pmix-mca-params.conf"

# The libraries the dynamic loader resolves for a file, less the base system every Linux has.
BASE='^(libc|libm|libdl|libpthread|librt|libutil|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'
deps() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | grep -Ev "$BASE" || true; }
copy_deps() { # file: copies each library it needs into lib/, and theirs
  local name path
  while read -r name path; do
    [ -e "$DIR/lib/$name" ] && continue
    cp -L "$path" "$DIR/lib/$name"
    copy_deps "$DIR/lib/$name"
  done < <(deps "$1")
}
copy_deps "$DIR/addon/Release/nodegrad.node"
copy_deps "$DIR/bin/mpirun"
copy_deps "$DIR/bin/orted"
FABRIC='^(libfabric|libuc[pstm]|libpsm|libibverbs|librdmacm|libnl-|libefa|libmlx)'
for c in "$DIR"/openmpi/*.so "$DIR"/pmix/*.so; do
  if deps "$c" | grep -Eq "$FABRIC"; then rm "$c"; else copy_deps "$c"; fi
done
echo "pack_host: $(ls "$DIR/lib" | wc -l) libraries, $(ls "$DIR/openmpi" | wc -l) Open MPI and $(ls "$DIR/pmix" | wc -l) PMIx components, $(du -sh "$DIR" | cut -f1)" >&2
