// _CBLAS: the C BLAS interface of OpenBLAS (Debian: libopenblas-dev).
// cblas.h on Debian is an alternatives link to OpenBLAS's header, which also declares
// openblas_set_num_threads / openblas_get_num_threads / openblas_get_corename.
#include <cblas.h>
