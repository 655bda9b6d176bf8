// See include/cnccl.h: ncclCommInitRank called with its unique id by value.
#include "cnccl.h"

#include <string.h>

typedef struct {
    char internal[EAGLET_NCCL_UNIQUE_ID_BYTES];
} unique_id;

typedef int (*comm_init_rank_fn)(void **comm, int nranks, unique_id id, int rank);

int eaglet_nccl_comm_init_rank(void *comm_init_rank, void **comm, int nranks, const unsigned char *id, int rank) {
    unique_id u;
    memcpy(u.internal, id, EAGLET_NCCL_UNIQUE_ID_BYTES);
    return ((comm_init_rank_fn)comm_init_rank)(comm, nranks, u, rank);
}
