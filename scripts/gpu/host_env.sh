# Sourced with the folder scripts/gpu/pack_host.sh made: `source host_env.sh DIR`. Points the
# loader, Node's 'cpu' addon and Open MPI at that folder's copies instead of a system install
# (Open MPI and PMIx read their install paths from these variables), and picks the transports two
# ranks on one host need: shared memory without the cross-memory-attach single copy (containers
# such as gVisor refuse process_vm_readv), loopback TCP for the launcher, no remote launch agent.
HOST=$(cd "${1:?usage: source host_env.sh DIR}" && pwd)
export PATH="$HOST/bin:$PATH"
export LD_LIBRARY_PATH="$HOST/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NODEGRAD_BUILD_DIR="$HOST/addon"
export OPAL_PREFIX="$HOST" OPAL_EXEC_PREFIX="$HOST" OPAL_BINDIR="$HOST/bin" OPAL_LIBDIR="$HOST/lib"
export OPAL_PKGLIBDIR="$HOST/openmpi" OPAL_DATAROOTDIR="$HOST/share" OPAL_DATADIR="$HOST/share"
export OPAL_PKGDATADIR="$HOST/share/openmpi" OPAL_SYSCONFDIR="$HOST/etc"
export PMIX_PREFIX="$HOST" PMIX_EXEC_PREFIX="$HOST" PMIX_BINDIR="$HOST/bin" PMIX_LIBDIR="$HOST/lib"
export PMIX_PKGLIBDIR="$HOST/pmix" PMIX_DATAROOTDIR="$HOST/share" PMIX_DATADIR="$HOST/share"
export PMIX_PKGDATADIR="$HOST/share/pmix" PMIX_SYSCONFDIR="$HOST/etc"
export OMPI_MCA_mca_base_component_path="$HOST/openmpi" PMIX_MCA_mca_base_component_path="$HOST/pmix"
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_plm=isolated OMPI_MCA_oob=tcp OMPI_MCA_btl_base_warn_component_unused=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
