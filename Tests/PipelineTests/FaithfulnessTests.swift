import Foundation
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraNN
import XCTest

/// RISE's deletion and insertion AUC: `Faithfulness` against a direct implementation written from the paper's
/// code (one perturbed image at a time, no batching, ordering by a plain descending sort of the map), and the
/// scores ranking a true attribution above a random one.
final class FaithfulnessTests: XCTestCase {
    /// Two classes; class 1's logit is the mean over `box` of the pixels times a checkerboard, class 0's a
    /// constant: only the box matters, and blurring (insertion's start) removes the signal.
    final class BoxClassifier: Module {
        let mask: Tensor, count: Float
        init(size: Int, box: PixelWindow) {
            var m = [Float](repeating: 0, count: size * size)
            for y in box.y..<(box.y + box.height) {
                for x in box.x..<(box.x + box.width) { m[y * size + x] = (x + y) % 2 == 0 ? 1 : -1 }
            }
            mask = Tensor(m, shape: [1, 1, size, size])
            count = Float(box.width * box.height)
            super.init()
        }
        override func forward(_ x: Tensor) -> Tensor {
            let n = x.shape[0]
            let inBox = (x * mask).sum(axes: [1, 2, 3]).scalars.map { 4 * $0 / count }
            return Tensor((0..<n).flatMap { [Float(1), inBox[$0]] }, shape: [n, 2])
        }

        /// Normal noise of magnitude >= 0.5 with the checkerboard's signs (so the box's logit is large), and the
        /// generator to draw further values from.
        static func input(size: Int, seed: UInt64) -> ([Float], RandomGenerator) {
            var g = RandomGenerator(seed: seed)
            let noise = Tensor.randn([1, 1, size, size], generator: &g).scalars
            return (noise.indices.map { i in (abs(noise[i]) + 0.5) * ((i % size + i / size) % 2 == 0 ? 1 : -1) }, g)
        }

        /// The true attribution: 1 inside `box`, 0 elsewhere.
        static func truth(size: Int, box: PixelWindow) -> [Float] {
            var truth = [Float](repeating: 0, count: size * size)
            for y in box.y..<(box.y + box.height) { for x in box.x..<(box.x + box.width) { truth[y * size + x] = 1 } }
            return truth
        }
    }

    /// RISE's `CausalMetric.single_run`, transcribed: n = ceil(HW / step) steps, the score before each step and
    /// after the last, pixels taken from `finish` in the map's descending order.
    func reference(
        _ model: Module, _ input: [Float], substrate: [Float], deletion: Bool, map: [Float], size: Int, steps: Int
    ) -> Double {
        let hw = size * size, step = (hw + steps - 1) / steps, n = (hw + step - 1) / step
        var start = deletion ? input : substrate
        let finish = deletion ? substrate : input
        let order = map.indices.sorted { map[$0] != map[$1] ? map[$0] > map[$1] : $0 < $1 }
        var scores = [Double]()
        for i in 0...n {
            let logits = withNoGrad { model(Tensor(start, shape: [1, 1, size, size])) }.scalars
            let e0 = exp(Double(logits[0])), e1 = exp(Double(logits[1]))
            scores.append(e1 / (e0 + e1))
            if i < n { for p in order[(i * step)..<min((i + 1) * step, hw)] { start[p] = finish[p] } }
        }
        return (scores.reduce(0, +) - scores[0] / 2 - scores[n] / 2) / Double(n)
    }

    func testScoresEqualADirectImplementationAndRankTheTrueMapFirst() throws {
        let size = 24, box = PixelWindow(x: 5, y: 7, width: 6, height: 4)
        let model = BoxClassifier(size: size, box: box)
        let (input, generator) = BoxClassifier.input(size: size, seed: 1)
        var g = generator
        let x = Tensor(input, shape: [1, 1, size, size])
        let crop = PixelWindow(x: 0, y: 0, width: size, height: size)
        let truth = BoxClassifier.truth(size: size, box: box)
        let random = (0..<(size * size)).map { _ in Float(g.nextInt(1000)) }
        let f = Faithfulness(steps: 50)
        let blurred = f.curve(.insertion, map: truth, crop: crop, model: model, input: x, target: .classLogit(1))[0]
        for (name, map) in [("truth", truth), ("random", random)] {
            let deletion = f.auc(.deletion, map: map, crop: crop, model: model, input: x, target: .classLogit(1))
            let expected = reference(
                model, input, substrate: [Float](repeating: 0, count: input.count), deletion: true, map: map,
                size: size, steps: 50)
            XCTAssertEqual(deletion, expected, accuracy: 1e-6, "\(name) deletion")
            print("faithfulness \(name): deletion AUC \(deletion)")
        }
        let dTruth = f.auc(.deletion, map: truth, crop: crop, model: model, input: x, target: .classLogit(1))
        let dRandom = f.auc(.deletion, map: random, crop: crop, model: model, input: x, target: .classLogit(1))
        let iTruth = f.auc(.insertion, map: truth, crop: crop, model: model, input: x, target: .classLogit(1))
        let iRandom = f.auc(.insertion, map: random, crop: crop, model: model, input: x, target: .classLogit(1))
        print("faithfulness: deletion truth \(dTruth) random \(dRandom); insertion truth \(iTruth) random \(iRandom)")
        XCTAssertLessThan(dTruth, dRandom - 0.1)
        XCTAssertGreaterThan(iTruth, iRandom + 0.1)
        // Insertion starts from the blurred input (not the input itself).
        XCTAssertNotEqual(
            blurred, f.curve(.deletion, map: truth, crop: crop, model: model, input: x, target: .classLogit(1))[0])
    }
}
