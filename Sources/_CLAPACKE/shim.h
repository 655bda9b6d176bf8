// _CLAPACKE: the C interface to LAPACK (Debian: liblapacke-dev). Used only where real linear algebra
// is needed (least-squares fits in eaglet-bench); targets that do not use it do not link it.
#include <lapacke.h>
