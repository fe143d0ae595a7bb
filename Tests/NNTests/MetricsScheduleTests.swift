import Foundation
import TesseraEngine
import TesseraNN
import XCTest

final class MetricsScheduleTests: XCTestCase {
    func testConfusionMatrixMetrics() {
        var m = ConfusionMatrix(classes: 3)
        // truth:      0 0 0 1 1 2
        // prediction: 0 0 1 1 1 1
        m.add(predictions: [0, 0, 1, 1, 1, 1], truth: [0, 0, 0, 1, 1, 2])
        XCTAssertEqual(m.pixelAccuracy, 4.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(m.iou[0], 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.iou[1], 2.0 / 4.0, accuracy: 1e-12)
        XCTAssertEqual(m.dice[1], 4.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(m.precision[1], 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.recall[0], 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.precision[2], 0, "present, never predicted")
        XCTAssertEqual(m.summary["mean_dice"]!, (0.8 + 4.0 / 6.0 + 0) / 3, accuracy: 1e-12)
        var empty = ConfusionMatrix(classes: 2)
        empty.add(predictions: [0, 0], truth: [0, 0])
        XCTAssertEqual(empty.dice, [1, 1], "a class absent from truth and prediction scores 1")
    }

    func testSchedulesMatchTorchFormulas() {
        let cos = LearningRateSchedule(.cosine)
        XCTAssertEqual(cos.rate(step: 0, total: 100, base: 1), 1, accuracy: 1e-12)
        XCTAssertEqual(cos.rate(step: 50, total: 100, base: 1), 0.5, accuracy: 1e-12)
        let poly = LearningRateSchedule(.poly)
        XCTAssertEqual(poly.rate(step: 50, total: 100, base: 0.01), 0.01 * pow(0.5, 0.9), accuracy: 1e-12)
        let step = LearningRateSchedule(.step, stepSize: 10, gamma: 0.5)
        XCTAssertEqual(step.rate(step: 25, total: 100, base: 1), 0.25, accuracy: 1e-12)
        let warm = LearningRateSchedule(.constant, warmupSteps: 4)
        XCTAssertEqual((0..<5).map { warm.rate(step: $0, total: 10, base: 1) }, [0.25, 0.5, 0.75, 1, 1])
    }

    func testOptimizerStateRoundTripsAndClipping() throws {
        var g = RandomGenerator(seed: 1)
        let p = Tensor.randn([5], generator: &g)
        p.requiresGrad = true
        let adam = Adam([p], learningRate: 0.1)
        p.grad = Tensor([1, 2, 3, 4, 5], shape: [5])
        adam.step()
        let copy = p.detached().copy()
        copy.requiresGrad = true
        let restored = Adam([copy], learningRate: 0.1)
        try restored.loadState(Dictionary(uniqueKeysWithValues: adam.state().map { ($0.name, $0.tensor) }))
        p.grad = Tensor([1, -1, 1, -1, 1], shape: [5])
        copy.grad = p.grad
        adam.step()
        restored.step()
        XCTAssertEqual(p.scalars, copy.scalars, "a restored Adam continues exactly")
        XCTAssertEqual(restored.stepCount, 2)

        p.grad = Tensor([3, 4, 0, 0, 0], shape: [5])
        XCTAssertEqual(clipGradientNorm([p], maxNorm: 1), 5, accuracy: 1e-5)
        XCTAssertEqual(p.grad!.scalars[0], 0.6, accuracy: 1e-5)
    }

    func testFocalLossReducesToCrossEntropyAtGammaZero() {
        var g = RandomGenerator(seed: 3)
        let logits = Tensor.randn([2, 3, 4, 4], generator: &g)
        let target = Tensor((0..<32).map { Float($0 % 3) }, shape: [2, 4, 4])
        let focal0 = SegmentationLoss.focal(logits, target, gamma: 0).scalars[0]
        XCTAssertEqual(focal0, Functional.crossEntropy(logits, target: target).scalars[0], accuracy: 1e-5)
        XCTAssertLessThan(SegmentationLoss.focal.callAsFunction(logits, target).scalars[0], focal0)
    }

    /// Pixel weights: all ones give the unweighted losses; a weight of k on one pixel counts it k times; BCE is
    /// the mean sigmoid cross-entropy of each class channel against the one-hot target (torch's
    /// binary_cross_entropy_with_logits), with the gradient of a direct finite difference.
    func testPixelWeightedLossesAndBinaryCrossEntropy() {
        var g = RandomGenerator(seed: 4)
        let logits = Tensor.randn([2, 3, 4, 4], generator: &g)
        let target = Tensor((0..<32).map { Float(($0 * 7) % 3) }, shape: [2, 4, 4])
        let ones = Tensor.ones([2, 4, 4])
        let cw: [Float] = [0.5, 2, 1]
        for loss in SegmentationLoss.allCases where loss != .dice {
            XCTAssertEqual(
                loss(logits, target, pixelWeights: ones).item, loss(logits, target).item, accuracy: 1e-5, "\(loss)")
        }
        XCTAssertEqual(
            SegmentationLoss.ce(logits, target, classWeights: cw, pixelWeights: ones).item,
            Functional.crossEntropy(logits, target: target, classWeights: cw).item, accuracy: 1e-5)
        // Doubling one pixel's weight adds its term once more to the sum.
        var w = [Float](repeating: 1, count: 32)
        w[5] = 2
        let single = Tensor(
            [Float](repeating: 0, count: 32).enumerated().map { $0.offset == 5 ? 1 : 0 }, shape: [2, 4, 4])
        for loss in [SegmentationLoss.ce, .bce, .focal] {
            let weighted = loss(logits, target, pixelWeights: Tensor(w, shape: [2, 4, 4])).item
            let base = loss(logits, target).item, extra = loss(logits, target, pixelWeights: single).item
            XCTAssertEqual(weighted, base + extra, accuracy: 1e-5, "\(loss)")
        }
        // BCE by hand.
        let x = logits.scalars, t = Functional.oneHot(target, classes: 3).scalars
        var direct = 0.0
        for i in x.indices {
            let p = 1 / (1 + Foundation.exp(-Double(x[i])))
            direct -= Double(t[i]) * Foundation.log(p) + Double(1 - t[i]) * Foundation.log(1 - p)
        }
        XCTAssertEqual(Double(SegmentationLoss.bce(logits, target).item), direct / Double(x.count), accuracy: 1e-5)
        // Gradient of the weighted form against central differences.
        let weights = Tensor((0..<32).map { 0.5 + Float($0 % 4) }, shape: [2, 4, 4])
        let v = logits.detached()
        v.requiresGrad = true
        SegmentationLoss.bce(v, target, pixelWeights: weights).backward()
        let grad = v.grad!.scalars
        for i in stride(from: 0, to: x.count, by: 7) {
            var plus = x, minus = x
            plus[i] += 1e-2
            minus[i] -= 1e-2
            let fp = SegmentationLoss.bce(Tensor(plus, shape: logits.shape), target, pixelWeights: weights).item
            let fm = SegmentationLoss.bce(Tensor(minus, shape: logits.shape), target, pixelWeights: weights).item
            XCTAssertEqual(grad[i], (fp - fm) / 2e-2, accuracy: 1e-4, "d/dx[\(i)]")
        }
    }
}
