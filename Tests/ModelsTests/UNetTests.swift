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
        for key in [
            "encoder.0.0.weight", "encoder.0.1.running_mean", "encoder.0.1.num_batches_tracked",
            "encoder.2.3.weight", "decoder.0.up.weight", "decoder.0.up.bias", "decoder.1.conv.4.bias",
            "head.weight", "head.bias"
        ] {
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
        let expected =
            conv(1, 4, 3, 64) + conv(4, 4, 3, 64) + conv(4, 8, 3, 16) + conv(8, 8, 3, 16)
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
            return nil
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

/// U-Net options: valid padding with cropped skips, bilinear up-sampling, dropout, configuration decoding.
final class UNetOptionsTests: XCTestCase {
    /// The paper's unpadded U-Net: 572 -> 388 at depth 4; sizes that do not pool evenly are refused; skips are
    /// centre-cropped; the smallest covering input is found for a given output.
    func testValidPaddingSizesAndCroppedSkips() {
        let paper = UNetConfig(depth: 4, padding: .valid)
        XCTAssertEqual(paper.outputSize(forInput: 572), 388)
        XCTAssertNil(paper.outputSize(forInput: 571))
        XCTAssertNil(paper.outputSize(forInput: 256), "256 - 4 = 252, 126 - 4 = 122, 61: odd")
        XCTAssertEqual(UNetConfig(depth: 4).outputSize(forInput: 256), 256)
        XCTAssertNil(UNetConfig(depth: 4).outputSize(forInput: 250))
        var g = RandomGenerator(seed: 4)
        let model = UNet(UNetConfig(inChannels: 1, classes: 3, depth: 2, width: 4, padding: .valid), generator: &g)
        let input = model.inputSize(covering: 20)
        let out = model.outputSize(forInput: input)!
        XCTAssertGreaterThanOrEqual(out, 20)
        XCTAssertNil(model.outputSize(forInput: input - 1).flatMap { $0 >= 20 ? $0 : nil })
        let y = withNoGrad { model(Tensor.randn([1, 1, input, input], generator: &g)) }
        XCTAssertEqual(y.shape, [1, 3, out, out])
        // No padding anywhere, so tiles join seamlessly (the paper's overlap-tile strategy): the output of a window
        // shifted by a multiple of 2^depth is the same window of the larger image's output.
        model.eval()
        let shift = 1 << model.config.depth
        let big = Tensor.randn([1, 1, input + shift, input + shift], generator: &g)
        let whole = withNoGrad { model(big) }
        let window = big.sliced(axis: 2, shift..<(shift + input)).sliced(axis: 3, shift..<(shift + input)).contiguous()
        let part = withNoGrad { model(window) }.scalars
        let expected = whole.sliced(axis: 2, shift..<(shift + out)).sliced(axis: 3, shift..<(shift + out)).contiguous()
            .scalars
        XCTAssertEqual(part.count, expected.count)
        for i in part.indices { XCTAssertEqual(part[i], expected[i], accuracy: 1e-5) }
    }

    /// Bilinear + conv up-sampling: shapes, names, and a training step that lowers the loss.
    func testBilinearUpsamplingAndDropout() {
        var g = RandomGenerator(seed: 6)
        let config = UNetConfig(inChannels: 1, classes: 2, depth: 2, width: 4, dropout: 0.5, upsampling: .bilinear)
        let model = UNet(config, generator: &g)
        let names = Set(model.stateDict().map(\.name))
        XCTAssertTrue(names.contains("decoder.0.up.1.weight") && names.contains("decoder.1.up.1.bias"))
        XCTAssertFalse(names.contains("decoder.0.up.weight"))
        let x = Tensor.randn([2, 1, 8, 8], generator: &g)
        // Dropout: training outputs follow the seed; evaluation is deterministic and drops nothing.
        model.reseedDropout(1)
        let a = withNoGrad { model(x) }.scalars
        model.reseedDropout(1)
        let b = withNoGrad { model(x) }.scalars
        model.reseedDropout(2)
        let c = withNoGrad { model(x) }.scalars
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        model.eval()
        XCTAssertEqual(withNoGrad { model(x) }.scalars, withNoGrad { model(x) }.scalars)
        XCTAssertEqual(withNoGrad { model(x) }.shape, [2, 2, 8, 8])
        // Round trip through JSON: options survive, and an old configuration without them decodes to the defaults.
        let decoded = try! JSONDecoder().decode(UNetConfig.self, from: try! JSONEncoder().encode(config))
        XCTAssertEqual(decoded, config)
        let old = #"{"inChannels":1,"classes":2,"depth":4,"width":32,"batchNorm":true}"#
        XCTAssertEqual(try! JSONDecoder().decode(UNetConfig.self, from: Data(old.utf8)), UNetConfig(width: 32))
    }
}
