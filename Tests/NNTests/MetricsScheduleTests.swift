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
}
