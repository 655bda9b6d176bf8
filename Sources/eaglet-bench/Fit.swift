// Least-squares fits of cost-growth curves with LAPACKE: given sizes x_i and measured y_i, find the
// coefficients c of y ≈ Σ_j c_j · x^p_j (for example time ≈ a·n³ + b·n² for a matmul, or
// time ≈ a·T + b·T² for attention), by solving the overdetermined system with QR (dgels).
import Foundation
import _CLAPACKE

/// Coefficients of y ≈ Σ_j c_j · x^powers[j] in the least-squares sense, or nil if there are fewer
/// points than terms or LAPACK reports a rank problem.
func leastSquaresFit(x: [Double], y: [Double], powers: [Double]) -> [Double]? {
    let m = x.count, n = powers.count
    guard m >= n, m == y.count, n > 0 else { return nil }
    // Scale each column to unit max so n³ and n² columns are comparable (conditioning).
    var scales = [Double](repeating: 1, count: n)
    for j in 0..<n { scales[j] = x.map { Swift.abs(pow($0, powers[j])) }.max() ?? 1 }
    var a = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { a[i * n + j] = pow(x[i], powers[j]) / scales[j] } }
    var b = y
    let info = LAPACKE_dgels(
        LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int32(m), Int32(n), 1,
        &a, Int32(n), &b, 1)
    guard info == 0 else { return nil }
    return (0..<n).map { b[$0] / scales[$0] }
}
