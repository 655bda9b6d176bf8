// The one NCCL call that Swift cannot make through a `@convention(c)` function pointer: ncclCommInitRank
// takes its ncclUniqueId, a struct of 128 bytes, by value, and only a C compiler passes such a struct the
// way the platform's calling convention says (x86-64 System V: copied into the stack arguments; AArch64: a
// pointer to a caller's copy). Nothing here links libnccl: the function's address comes from dlsym in
// Sources/EagletGPU/NCCL.swift, which calls it through `eaglet_nccl_comm_init_rank`.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/// NCCL_UNIQUE_ID_BYTES of nccl.h.
#define EAGLET_NCCL_UNIQUE_ID_BYTES 128

/// Calls `comm_init_rank` (the address of ncclCommInitRank) as
/// ncclCommInitRank(comm, nranks, <the 128 bytes at id, by value>, rank) and returns its ncclResult_t.
int eaglet_nccl_comm_init_rank(void *comm_init_rank, void **comm, int nranks, const unsigned char *id, int rank);

#ifdef __cplusplus
}
#endif
