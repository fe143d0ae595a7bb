import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN
import XCTest

final class UNetTests: XCTestCase {
    func testShapesAndParameterNames() {
        var g = RandomGenerator(seed: 3)
        let model = UNet(UNetConfig(inChannels: 3, classes: 4, depth: 2, width: 8), generator: &g)
        let y = withNoGrad { model(Tensor.randn([2, 3, 16, 12], generator: &g)) }
        XCTAssertEqual(y.shape, [2, 4, 16, 12])
        let names = Set(model.stateDict().map(\.name))
        for key in ["encoder.0.0.weight", "encoder.0.1.running_mean", "encoder.0.1.num_batches_tracked",
                    "encoder.2.3.weight", "decoder.0.up.weight", "decoder.0.up.bias", "decoder.1.conv.4.bias",
                    "head.weight", "head.bias"] {
            XCTAssertTrue(names.contains(key), "missing \(key)")
        }
        XCTAssertFalse(names.contains("encoder.0.0.bias"), "convs followed by batch norm carry no bias")
        XCTAssertNotNil(model.module(at: "decoder.1"))
    }

    /// Inference fuses conv + batch norm + ReLU; it must agree with the step-by-step evaluation.
    func testFusedInferenceMatchesUnfused() {
        var g = RandomGenerator(seed: 5)
        let model = UNet(UNetConfig(inChannels: 1, classes: 3, depth: 2, width: 8), generator: &g)
        // Non-trivial running statistics and affine parameters.
        var norms = 0
        for case let (_, bn as BatchNorm) in model.namedModules() {
            bn.runningVar.updateInPlace { _ in 0.5 + g.nextFloat() }
            bn.weight.updateInPlace { _ in 0.5 + g.nextFloat() }
            bn.runningMean.updateInPlace { _ in g.nextNormal() * 0.1 }
            bn.bias.updateInPlace { _ in g.nextNormal() * 0.1 }
            norms += 1
        }
        XCTAssertEqual(norms, 10)
        model.eval()
        let x = Tensor.randn([1, 1, 16, 16], generator: &g)
        let fused = withNoGrad { model(x) }
        let unfused = model(x)
        XCTAssertTrue(unfused.hasHistory, "the reference pass must take the unfused path")
        let a = fused.scalars, b = unfused.scalars
        for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 + 1e-4 * Swift.abs(b[i])) }
    }

    /// A few Adam steps on one batch lower the cross-entropy.
    func testTrainingStepsReduceLoss() {
        var g = RandomGenerator(seed: 9)
        let model = UNet(UNetConfig(inChannels: 1, classes: 2, depth: 2, width: 8), generator: &g)
        let x = Tensor.randn([2, 1, 16, 16], generator: &g)
        let target = Tensor(x.scalars.map { $0 > 0 ? 1 : 0 }, shape: [2, 16, 16])
        let optimizer = Adam(model.parameters, learningRate: 1e-2)
        var losses: [Float] = []
        for _ in 0..<15 {
            optimizer.zeroGrad()
            let loss = Functional.crossEntropy(model(x), target: target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item)
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "losses \(losses)")
    }

    func testForwardFlopsCountsEveryConvolution() {
        var g = RandomGenerator(seed: 0)
        let model = UNet(UNetConfig(inChannels: 1, classes: 2, depth: 1, width: 4), generator: &g)
        // Level 0 at 8x8: 1->4 and 4->4; level 1 at 4x4: 4->8, 8->8; up 8->4 (2x2 s2); 8->4, 4->4; head 4->2.
        let conv = { (a: Int, b: Int, k: Int, p: Int) in 2.0 * Double(a * b * k * k * p) }
        let expected = conv(1, 4, 3, 64) + conv(4, 4, 3, 64) + conv(4, 8, 3, 16) + conv(8, 8, 3, 16)
            + 2.0 * Double(8 * 4 * 4 * 16) + conv(8, 4, 3, 64) + conv(4, 4, 3, 64) + conv(4, 2, 1, 64)
        XCTAssertEqual(model.forwardFlops(batch: 1, height: 8, width: 8), expected)
    }
}

/// Grad-CAM needs d(target)/d(activation) of a named layer: a forward hook captures it, retainGrad keeps it.
final class ActivationGradientTests: XCTestCase {
    func testGradientOfNamedLayerOutput() throws {
        var g = RandomGenerator(seed: 21)
        let model = UNet(UNetConfig(inChannels: 1, classes: 3, depth: 2, width: 4), generator: &g)
        model.eval()
        let last = try XCTUnwrap(model.module(at: "decoder.1"))
        var captured: Tensor?
        last.forwardHooks.append { _, _, output in
            output.retainGrad()
            captured = output
        }
        let x = Tensor.randn([1, 1, 8, 8], generator: &g)
        x.requiresGrad = true
        let logits = model(x)
        let c = 2
        logits.sliced(axis: 1, c..<(c + 1)).sum().backward()
        let a = try XCTUnwrap(captured)
        let grad = try XCTUnwrap(a.grad, "no gradient reached decoder.1's output")
        XCTAssertEqual(grad.shape, [1, 4, 8, 8])
        // The head is a 1x1 convolution, so d(sum of class-c logits)/d a[k][p] = head.weight[c][k] at every pixel.
        let w = model.head.weight.scalars
        let gs = grad.scalars
        for k in 0..<4 {
            for p in 0..<64 { XCTAssertEqual(gs[k * 64 + p], w[c * 4 + k], accuracy: 1e-6) }
        }
    }
}
