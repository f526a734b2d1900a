//! `ch08`: an OCI runtime, called as podman's conmon and containerd's shim
//! call runc.

fn main() {
    let cli = pfs_oci::cli::parse();
    ch01::fault::arm();
    if cli.explain {
        ch01::explain::enable();
    }
    pfs_cli::exit_with(ch08::main(&cli))
}
