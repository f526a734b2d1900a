//! `ch08`: an OCI runtime, called as podman's conmon and containerd's shim
//! call runc.

fn main() {
    let cli = pfs_oci::cli::parse();
    ch01::fault::arm();
    if cli.explain {
        ch01::explain::enable();
    }
    let result = ch08::main(&cli);
    // conmon and containerd's shim read the last error from --log.
    if let (Err(e), Some(log)) = (&result, &cli.log) {
        pfs_oci::log::error(log, cli.log_format, &format!("{e:#}"));
    }
    pfs_cli::exit_with(result)
}
