import Foundation
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraNN
import XCTest

/// ROAD: the noisy linear imputation against a direct solve of pytorch-grad-cam's equation system, the removal
/// masks against numpy's percentile, and the combined score ranking a true map above a random one.
final class ROADTests: XCTestCase {
    /// pytorch-grad-cam's `setup_sparse_system` as a dense system, solved by Gaussian elimination with pivoting.
    func directImputation(_ plane: [Float], removed: [Bool], height: Int, width: Int) -> [Float] {
        let offsets: [(Int, Int, Double)] = [
            (1, 1, 1.0 / 12), (0, 1, 1.0 / 6), (-1, 1, 1.0 / 12), (1, -1, 1.0 / 12), (0, -1, 1.0 / 6),
            (-1, -1, 1.0 / 12), (1, 0, 1.0 / 6), (-1, 0, 1.0 / 6)
        ]
        let unknown = plane.indices.filter { removed[$0] }
        let index = Dictionary(uniqueKeysWithValues: unknown.enumerated().map { ($1, $0) })
        let n = unknown.count
        var a = [[Double]](repeating: [Double](repeating: 0, count: n + 1), count: n)
        for (k, p) in unknown.enumerated() {
            var sum = 1.0
            for (dy, dx, w) in offsets {
                let y = p / width + dy, x = p % width + dx
                guard y >= 0 && y < height && x >= 0 && x < width else {
                    sum -= w
                    continue
                }
                if let j = index[y * width + x] { a[k][j] = w } else { a[k][n] -= w * Double(plane[y * width + x]) }
            }
            a[k][k] = -sum
        }
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) } ?? col
            a.swapAt(col, pivot)
            for r in 0..<n where r != col && a[r][col] != 0 {
                let f = a[r][col] / a[col][col]
                for c in col...n { a[r][c] -= f * a[col][c] }
            }
        }
        var out = plane
        for (k, p) in unknown.enumerated() { out[p] = Float(a[k][n] / a[k][k]) }
        return out
    }

    func testImputationEqualsADirectSolveOfTheSystem() {
        var g = RandomGenerator(seed: 3)
        for (h, w, share) in [(9, 11, 0.3), (12, 10, 0.8), (7, 7, 0.95)] {
            let plane = (0..<(h * w)).map { _ in g.nextNormal() }
            var removed = (0..<(h * w)).map { _ in Double(g.nextFloat()) < share }
            removed[0] = false
            let expected = directImputation(plane, removed: removed, height: h, width: w)
            var imputer = NoisyLinearImputer(noise: 0)
            imputer.tolerance = 1e-10
            var rng = RandomGenerator(seed: 0)
            let got = imputer.impute(plane, channels: 1, height: h, width: w, removed: removed, generator: &rng)
            for i in plane.indices {
                XCTAssertEqual(got[i], expected[i], accuracy: 1e-5, "\(h)x\(w) pixel \(i)")
                if !removed[i] { XCTAssertEqual(got[i], plane[i]) }
            }
        }
    }

    /// A hole large enough for the coarse-to-fine start: every imputed pixel is the weighted mean of its
    /// neighbours (the equation the system states), to the solver's tolerance.
    func testLargeHolesSatisfyTheImputationEquations() {
        let h = 80, w = 72
        var g = RandomGenerator(seed: 5)
        let plane = (0..<(h * w)).map { i in Float(i % w) / 10 + g.nextNormal() }
        let removed = (0..<(h * w)).map { i in
            let y = i / w, x = i % w
            return (y > 5 && y < 70 && x > 10 && x < 60) || (x + y) % 17 == 0
        }
        let got = NoisyLinearImputer(noise: 0).impute(
            plane, channels: 1, height: h, width: w, removed: removed, generator: &g)
        var worst: Float = 0
        for p in plane.indices where removed[p] {
            var s = 0.0, weight = 0.0
            for (dy, dx, wt) in NoisyLinearImputerWeights.all {
                let y = p / w + dy, x = p % w + dx
                guard y >= 0 && y < h && x >= 0 && x < w else { continue }
                s += wt * Double(got[y * w + x])
                weight += wt
            }
            worst = max(worst, abs(got[p] - Float(s / weight)))
        }
        XCTAssertLessThan(worst, 1e-4)
        // The noise: standard deviation 0.01 about the solution.
        var rng = RandomGenerator(seed: 9)
        let noisy = NoisyLinearImputer().impute(
            plane, channels: 1, height: h, width: w, removed: removed, generator: &rng)
        let d = plane.indices.filter { removed[$0] }.map { Double(noisy[$0] - got[$0]) }
        let sd = (d.reduce(0) { $0 + $1 * $1 } / Double(d.count)).squareRoot()
        XCTAssertEqual(sd, 0.01, accuracy: 0.001)
    }

    func testRemovalFollowsNumpysPercentile() {
        XCTAssertEqual(ROAD.percentile([1, 2, 3, 4], 50), 2.5)
        XCTAssertEqual(ROAD.percentile([1, 2, 3, 4], 10), 1.3, accuracy: 1e-6)
        XCTAssertEqual(ROAD.percentile([1, 2, 3, 4], 100), 4)
        // A 10 x 10 map of 0..99: MoRF at p keeps the values below the p-th percentile.
        let map = (0..<100).map { Float($0) / 99 }
        let crop = PixelWindow(x: 1, y: 0, width: 10, height: 10)
        for p in [10.0, 50.0, 90.0] {
            let morf = ROAD.removed(
                map: map, sorted: map.sorted(), crop: crop, height: 10, width: 12, percentile: p,
                leastRelevantFirst: false)
            let lerf = ROAD.removed(
                map: map, sorted: map.map { 1 - $0 }.sorted(), crop: crop, height: 10, width: 12, percentile: p,
                leastRelevantFirst: true)
            let kept = Int((p / 100 * 99).rounded(.up))
            XCTAssertEqual(morf.filter { $0 }.count, 100 - kept, "MoRF \(p)")
            XCTAssertEqual(lerf.filter { $0 }.count, 100 - kept, "LeRF \(p)")
            // Most relevant first removes the top of the map; least relevant first its bottom.
            XCTAssertTrue(morf[9 * 12 + 10])
            XCTAssertFalse(morf[1])
            XCTAssertTrue(lerf[1])
            XCTAssertFalse(lerf[9 * 12 + 10])
            XCTAssertFalse(morf[0] || lerf[0] || morf[11] || lerf[11], "outside the crop is kept")
        }
    }

    func testTheTrueMapScoresAboveARandomOne() {
        let size = 24, box = PixelWindow(x: 5, y: 7, width: 6, height: 4)
        let model = FaithfulnessTests.BoxClassifier(size: size, box: box)
        let (input, generator) = FaithfulnessTests.BoxClassifier.input(size: size, seed: 1)
        var g = generator
        let x = Tensor(input, shape: [1, 1, size, size])
        let crop = PixelWindow(x: 0, y: 0, width: size, height: size)
        var truth = FaithfulnessTests.BoxClassifier.truth(size: size, box: box)
        for i in truth.indices { truth[i] += Float(i) * 1e-5 }
        let random = (0..<(size * size)).map { _ in g.nextFloat() }
        let road = ROAD()
        let t = road.changes(map: truth, crop: crop, model: model, input: x, target: .classLogit(1))
        let r = road.score(map: random, crop: crop, model: model, input: x, target: .classLogit(1))
        print("ROAD: true map \(t.combined) random \(r); MoRF \(t.mostRelevantFirst) LeRF \(t.leastRelevantFirst)")
        XCTAssertEqual(t.mostRelevantFirst.count, 9)
        XCTAssertGreaterThan(t.combined, r + 0.1)
        // Removing the box (MoRF at 50%: the top half includes it) removes the evidence; the rest does not matter.
        XCTAssertLessThan(t.mostRelevantFirst[4], -0.2)
        XCTAssertEqual(t.leastRelevantFirst[4], 0, accuracy: 0.02)
        // Seeded: the same call gives the same score.
        XCTAssertEqual(road.score(map: random, crop: crop, model: model, input: x, target: .classLogit(1)), r)
    }
}

/// The neighbour weights the tests check against, written out as pytorch-grad-cam's `neighbors_weights`.
enum NoisyLinearImputerWeights {
    static let all: [(Int, Int, Double)] = [
        (1, 1, 1.0 / 12), (0, 1, 1.0 / 6), (-1, 1, 1.0 / 12), (1, -1, 1.0 / 12), (0, -1, 1.0 / 6),
        (-1, -1, 1.0 / 12), (1, 0, 1.0 / 6), (-1, 0, 1.0 / 6)
    ]
}
