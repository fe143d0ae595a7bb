import Foundation
import TesseraEngine
import XCTest

/// Central finite differences against autodiff for every operator, on float32 with a tolerance a wrong
/// derivative cannot meet (errors of a wrong rule are O(1); the check allows 2% plus 2e-3).
final class GradientCheckTests: XCTestCase {
    var generator = RandomGenerator(seed: 42)

    func randn(_ shape: [Int], awayFromZero: Bool = false) -> Tensor {
        let t = Tensor.randn(shape, generator: &generator)
        if awayFromZero { t.updateInPlace { $0 >= 0 ? $0 + 0.2 : $0 - 0.2 } }
        t.requiresGrad = true
        return t
    }

    /// Distinct values 0.05 apart in a seeded random order, so no two inputs of a max lie within the finite
    /// difference step of each other (a tie makes the difference quotient meaningless, not the gradient wrong).
    func distinct(_ shape: [Int], offset: Float = 0) -> Tensor {
        let n = shape.reduce(1, *)
        var values = (0..<n).map { Float($0) * 0.05 - Float(n) * 0.025 + offset }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, generator.nextInt(i + 1)) }
        let t = Tensor(values, shape: shape)
        t.requiresGrad = true
        return t
    }

    /// The elements checked: every one of an input of at most `all` elements (every tap of a kernel, every
    /// position of a pooling or normalisation input), else `samples` distinct seeded random positions.
    func positions(count: Int, samples: Int, all: Int) -> [Int] {
        if count <= all { return Array(0..<count) }
        var order = Array(0..<count)
        for i in 0..<min(samples, count) { order.swapAt(i, i + generator.nextInt(count - i)) }
        return Array(order.prefix(samples)).sorted()
    }

    /// Checks d sum(f(inputs) * R) / d input against central differences at every element of small inputs and at
    /// `samples` seeded random elements of larger ones.
    func check(
        _ name: String, _ inputs: [Tensor], eps: Float = 1e-2, samples: Int = 24, all: Int = 512,
        file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor
    ) {
        let y = f(inputs)
        let r = Tensor.randn(y.shape, generator: &generator)
        (y * r).sum().backward()
        func loss() -> Double {
            withNoGrad {
                let out = f(inputs).contiguous()
                let rc = r.contiguous()
                var s: Double = 0
                for i in 0..<out.count { s += Double(out.pointer[i]) * Double(rc.pointer[i]) }
                return s
            }
        }
        for (k, x) in inputs.enumerated() where x.requiresGrad {
            guard let g = x.grad else {
                XCTFail("\(name): input \(k) got no gradient", file: file, line: line); continue
            }
            let gs = g.scalars
            for i in positions(count: x.count, samples: samples, all: all) {
                let saved = x.pointer[i]
                x.pointer[i] = saved + eps
                let plus = loss()
                x.pointer[i] = saved - eps
                let minus = loss()
                x.pointer[i] = saved
                let fd = (plus - minus) / Double(2 * eps)
                let ad = Double(gs[i])
                let tol = 2e-3 + 2e-2 * max(Swift.abs(fd), Swift.abs(ad))
                if Swift.abs(fd - ad) > tol {
                    XCTFail(
                        "\(name): input \(k) element \(i): autodiff \(ad) vs finite difference \(fd)", file: file,
                        line: line)
                    return
                }
            }
        }
    }

    func testElementwiseAndBroadcast() {
        check("add", [randn([2, 3, 4]), randn([3, 1])]) { $0[0] + $0[1] }
        check("sub", [randn([2, 3, 4]), randn([4])]) { $0[0] - $0[1] }
        check("mul", [randn([2, 3, 4]), randn([1, 3, 1])]) { $0[0] * $0[1] }
        check("div", [randn([2, 3]), randn([2, 3], awayFromZero: true)]) { $0[0] / $0[1] }
        check("exp", [randn([5])]) { $0[0].exp() }
        check("log", [randn([5], awayFromZero: true)]) { $0[0].abs().log() }
        check("sqrt", [randn([5], awayFromZero: true)]) { ($0[0] * $0[0]).sqrt() }
        check("pow", [randn([5], awayFromZero: true)]) { $0[0].pow(3) }
        check("clamp", [randn([6], awayFromZero: true)]) { $0[0].clamped(min: -0.5, max: 0.5) }
        check("maximum", [distinct([6]), distinct([6], offset: 0.025)]) { Tensor.maximum($0[0], $0[1]) }
    }

    func testReductionsAndShapes() {
        check("sum", [randn([2, 3, 4])]) { $0[0].sum(axes: [0, 2]) }
        check("mean", [randn([2, 3, 4])]) { $0[0].mean(axes: [1], keepDims: true) }
        check("max", [distinct([3, 5])]) { $0[0].max(axis: 1) }
        check("reshape+permute", [randn([2, 3, 4])]) { $0[0].permuted([2, 0, 1]).reshaped([4, 6]) * 2 }
        check("slice", [randn([4, 5])]) { $0[0].sliced(axis: 1, 1..<4) }
        check("concat", [randn([2, 3]), randn([2, 2])]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        check("split", [randn([5, 2])]) { $0[0].split([2, 3], axis: 0)[1] * 3 }
        check("pad", [randn([2, 3])]) { $0[0].padded([(1, 0), (2, 1)]) }
        check("reflect pad", [randn([1, 1, 4, 5])]) { $0[0].padded(spatial: [(2, 1), (1, 3)], mode: .reflect) }
        check("replicate pad", [randn([1, 1, 4, 5])]) { $0[0].padded(spatial: [(2, 1), (1, 3)], mode: .replicate) }
        check("matmul", [randn([3, 4]), randn([4, 5])]) { $0[0].matmul($0[1]) }
        check("matmul transposed", [randn([4, 3]), randn([5, 4])]) { $0[0].transposed().matmul($0[1].transposed()) }
    }

    func testConvolutions() {
        check("conv1d", [randn([2, 4, 9]), randn([6, 2, 3]), randn([6])]) {
            Functional.conv($0[0], weight: $0[1], bias: $0[2], stride: [2], padding: .explicit([1]), groups: 2)
        }
        check("conv2d same dilated", [randn([1, 3, 7, 8]), randn([4, 3, 3, 3])]) {
            Functional.conv($0[0], weight: $0[1], padding: .same, dilation: [2])
        }
        check("conv2d full even kernel", [randn([1, 2, 5, 6]), randn([3, 2, 2, 4])]) {
            Functional.conv($0[0], weight: $0[1], padding: .full)
        }
        check("conv2d strided reflect", [randn([2, 2, 8, 7]), randn([3, 2, 3, 3])]) {
            Functional.conv($0[0], weight: $0[1], stride: [2, 1], padding: .explicit([1]), paddingMode: .reflect)
        }
        check("conv2d depthwise replicate", [randn([1, 4, 6, 6]), randn([4, 1, 3, 3])]) {
            Functional.conv($0[0], weight: $0[1], padding: .explicit([1]), groups: 4, paddingMode: .replicate)
        }
        check("conv3d", [randn([1, 2, 4, 5, 5]), randn([2, 2, 3, 3, 3])]) {
            Functional.conv($0[0], weight: $0[1], stride: [1, 2, 1], padding: .explicit([1]))
        }
        check("conv_transpose2d overlapping", [randn([1, 4, 3, 4]), randn([4, 3, 3, 3]), randn([3])]) {
            Functional.convTranspose($0[0], weight: $0[1], bias: $0[2], stride: [2], padding: [1], outputPadding: [1])
        }
        check("conv_transpose2d 2x2 stride 2", [randn([2, 4, 3, 4]), randn([4, 3, 2, 2]), randn([3])]) {
            Functional.convTranspose($0[0], weight: $0[1], bias: $0[2], stride: [2])
        }
        check("linear", [randn([3, 5]), randn([4, 5]), randn([4])]) {
            Functional.linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    func testPoolingNormResample() {
        check("max pool 2x2", [distinct([1, 2, 6, 6])]) { Functional.maxPool2d($0[0], kernel: [2, 2]) }
        check("max pool 3x3 padded", [distinct([1, 2, 7, 7])]) {
            Functional.maxPool2d($0[0], kernel: [3, 3], stride: [2], padding: [1])
        }
        check("avg pool ceil", [randn([1, 2, 7, 7])]) {
            Functional.avgPool2d(
                $0[0], kernel: [3, 3], stride: [2], padding: [1], ceilMode: true, countIncludePad: false)
        }
        check("adaptive avg", [randn([1, 2, 7, 9])]) { Functional.adaptiveAvgPool2d($0[0], outputSize: [3, 4]) }
        check("adaptive max", [distinct([1, 2, 7, 9])]) { Functional.adaptiveMaxPool2d($0[0], outputSize: [3, 4]) }
        check("batch norm train", [randn([4, 3, 3, 3]), randn([3]), randn([3])]) {
            Functional.batchNorm($0[0], runningMean: nil, runningVar: nil, weight: $0[1], bias: $0[2], training: true)
        }
        check("batch norm eval", [randn([2, 3, 3, 3]), randn([3]), randn([3])]) {
            Functional.batchNorm(
                $0[0], runningMean: Tensor([0.1, -0.2, 0.3], shape: [3]),
                runningVar: Tensor([1.5, 0.5, 2], shape: [3]), weight: $0[1], bias: $0[2], training: false)
        }
        // With a ReLU after batch norm, a step of 1e-2 in any input moves some normalised value across zero (train
        // mode couples every input of a channel), where the difference quotient means nothing: a smaller step.
        check("batch norm + relu train", [randn([4, 3, 3, 3]), randn([3]), randn([3])], eps: 1e-3) {
            Functional.batchNorm(
                $0[0], runningMean: nil, runningVar: nil, weight: $0[1], bias: $0[2], training: true, relu: true)
        }
        check("batch norm + relu eval", [randn([2, 3, 3, 3]), randn([3]), randn([3])], eps: 1e-3) {
            Functional.batchNorm(
                $0[0], runningMean: Tensor([0.1, -0.2, 0.3], shape: [3]),
                runningVar: Tensor([1.5, 0.5, 2], shape: [3]), weight: $0[1], bias: $0[2], training: false,
                relu: true)
        }
        check("group norm", [randn([2, 6, 3, 3]), randn([6]), randn([6])]) {
            Functional.groupNorm($0[0], groups: 3, weight: $0[1], bias: $0[2])
        }
        check("layer norm", [randn([2, 3, 4]), randn([3, 4]), randn([3, 4])]) {
            Functional.layerNorm($0[0], normalizedShape: [3, 4], weight: $0[1], bias: $0[2])
        }
        check("bilinear", [randn([1, 2, 4, 5])]) { Functional.resizeBilinear($0[0], size: [7, 9]) }
        check("bilinear aligned", [randn([1, 2, 4, 5])]) {
            Functional.resizeBilinear($0[0], size: [8, 3], alignCorners: true)
        }
        check("nearest", [randn([1, 2, 4, 5])]) { Functional.resizeNearest($0[0], size: [8, 10]) }
    }

    func testActivationsAndLosses() {
        check("relu", [randn([10], awayFromZero: true)]) { Functional.relu($0[0]) }
        check("leaky relu", [randn([10], awayFromZero: true)]) { Functional.leakyRelu($0[0], negativeSlope: 0.2) }
        check("sigmoid", [randn([10])]) { Functional.sigmoid($0[0]) }
        check("tanh", [randn([10])]) { Functional.tanh($0[0]) }
        check("gelu", [randn([10])]) { Functional.gelu($0[0]) }
        check("silu", [randn([10])]) { Functional.silu($0[0]) }
        check("softmax", [randn([2, 4, 3])]) { Functional.softmax($0[0], axis: 1) }
        check("log softmax", [randn([2, 4, 3])]) { Functional.logSoftmax($0[0], axis: -1) }
        let target = Tensor([0, 2, 1, 255, 3, 0, 1, 2], shape: [2, 2, 2])
        check("cross entropy", [randn([2, 4, 2, 2])]) {
            Functional.crossEntropy(
                $0[0], target: target, classWeights: [1, 2, 0.5, 1], ignoreIndex: 255, labelSmoothing: 0.1)
        }
        let binary = Tensor([0, 1, 1, 0, 1, 0], shape: [6])
        check("bce", [randn([6])]) { Functional.binaryCrossEntropyWithLogits($0[0], target: binary, positiveWeight: 2) }
        let labels = Tensor([0, 2, 1, 1, 2, 0, 1, 2], shape: [2, 2, 2])
        check("dice", [randn([2, 3, 2, 2])]) { Functional.diceLoss($0[0], target: labels) }
    }

    func testGradientOfIntermediateActivation() {
        let x = randn([1, 2, 4, 4])
        let w = randn([3, 2, 3, 3])
        let a = Functional.relu(Functional.conv(x, weight: w, padding: .same))
        a.retainGrad()
        let score = (a * a).sum()
        score.backward()
        let expected = (a.detached() * 2).scalars
        XCTAssertEqual(a.grad?.scalars ?? [], expected)
    }

    func testNoGradRecordsNothing() {
        let x = randn([2, 3])
        let y = withNoGrad { (x * 2).exp() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(y.hasHistory)
    }
}

final class PoolingSemanticsTests: XCTestCase {
    /// torch.max_pool2d propagates NaN; the 2x2 fast path must too, with and without autodiff.
    func testMaxPoolPropagatesNaN() {
        let x = Tensor([1, .nan, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0], shape: [1, 1, 4, 4])
        let plain = withNoGrad { Functional.maxPool2d(x, kernel: [2, 2]) }.scalars
        XCTAssertTrue(plain[0].isNaN)
        XCTAssertEqual(Array(plain[1...]), [8, 0, 0])
        x.requiresGrad = true
        let recorded = Functional.maxPool2d(x, kernel: [2, 2])
        XCTAssertTrue(recorded.scalars[0].isNaN)
        recorded.sum().backward()
        XCTAssertEqual(x.grad?.scalars[1], 1, "the gradient goes to the NaN that won")
    }
}
