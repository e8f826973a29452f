//! Seccomp: OCI profiles compiled to BPF, and Docker's default profile (being written).
