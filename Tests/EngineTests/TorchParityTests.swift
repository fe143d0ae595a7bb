import Foundation
import TesseraEngine
import TestSupport
import XCTest

/// Walks every case of every operator fixture file (TESSERA_TORCH_FIXTURES) and checks forward and gradients.
final class TorchParityTests: XCTestCase {
    func testEveryFixtureCase() throws {
        let files = try SharedFixtures.operatorFiles()
        XCTAssertFalse(files.isEmpty, "no operator fixture files found")
        var checked = 0
        for file in files {
            let op = file.metadata["op"]!
            for c in try FixtureCase.all(in: file) {
                let label = "\(URL(fileURLWithPath: file.file).lastPathComponent):\(c.name)"
                guard let runner = OperatorRunners.runner(for: op) else {
                    XCTFail("\(label): no runner for op family '\(op)'")
                    continue
                }
                let compared = try runner(c, label)
                XCTAssertGreaterThan(compared, 0, "\(label): nothing compared")
                checked += 1
            }
        }
        print("parity: checked \(checked) cases in \(files.count) files")
    }
}

/// Maps an op family to a function that runs one case and compares every tensor it has.
enum OperatorRunners {
    typealias Runner = (FixtureCase, String) throws -> Int

    static func runner(for op: String) -> Runner? {
        switch op {
        case "conv1d", "conv2d", "conv3d": return convolution
        case "conv_transpose2d", "conv_transpose1d", "conv_transpose3d": return transposedConvolution
        case "activation": return activation
        case "pool2d": return pooling
        case "norm": return normalization
        case "resample": return resample
        case "loss": return loss
        default: return nil
        }
    }

    /// Compares output and each gradient role present; returns how many tensors were compared.
    static func compare(_ c: FixtureCase, _ label: String, output: Tensor, inputs: [(role: String, tensor: Tensor)])
        -> Int
    {
        var n = 0
        if let expected = c.tensor("output") {
            assertClose(output, expected, "\(label) output"); n += 1
        }
        guard let gradOutput = c.tensor("grad_output") else { return n }
        output.backward(gradOutput)
        for (role, t) in inputs {
            guard let expected = c.tensor("grad_\(role)") else { continue }
            guard let g = t.grad else { XCTFail("\(label): no gradient for \(role)"); continue }
            assertClose(g, expected, "\(label) grad_\(role)"); n += 1
        }
        return n
    }

    static func leaf(_ c: FixtureCase, _ role: String) -> Tensor? {
        guard let t = c.tensor(role) else { return nil }
        t.requiresGrad = true
        return t
    }

    static func padding(_ c: FixtureCase) -> Padding {
        switch c.string("padding") {
        case "same": return .same
        case "valid": return .valid
        case "full": return .full
        default: return .explicit(c.ints("padding") ?? [0])
        }
    }

    static func convolution(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!, w = leaf(c, "weight")!, b = leaf(c, "bias")
        let mode = PaddingMode(rawValue: c.string("padding_mode") ?? "zeros") ?? .zeros
        let y = Functional.conv(
            x, weight: w, bias: b, stride: c.ints("stride") ?? [1], padding: padding(c),
            dilation: c.ints("dilation") ?? [1], groups: c.int("groups", default: 1),
            paddingMode: mode)
        return compare(c, label, output: y, inputs: [("input", x), ("weight", w)] + (b.map { [("bias", $0)] } ?? []))
    }

    static func transposedConvolution(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!, w = leaf(c, "weight")!, b = leaf(c, "bias")
        let y = Functional.convTranspose(
            x, weight: w, bias: b, stride: c.ints("stride") ?? [1],
            padding: c.ints("padding") ?? [0],
            outputPadding: c.ints("output_padding") ?? [0],
            groups: c.int("groups", default: 1), dilation: c.ints("dilation") ?? [1])
        return compare(c, label, output: y, inputs: [("input", x), ("weight", w)] + (b.map { [("bias", $0)] } ?? []))
    }

    static func activation(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!
        let dim = c.int("dim", default: 1)
        let y: Tensor
        switch c.string("kind") ?? c.name {
        case "relu": y = Functional.relu(x)
        case "leaky_relu": y = Functional.leakyRelu(x, negativeSlope: Float(c.double("negative_slope", default: 0.01)))
        case "sigmoid": y = Functional.sigmoid(x)
        case "tanh": y = Functional.tanh(x)
        case "gelu": y = Functional.gelu(x)
        case "silu": y = Functional.silu(x)
        case "softmax": y = Functional.softmax(x, axis: dim)
        case "log_softmax": y = Functional.logSoftmax(x, axis: dim)
        case let kind:
            XCTFail("\(label): unknown activation '\(kind)'")
            return 0
        }
        return compare(c, label, output: y, inputs: [("input", x)])
    }

    static func pooling(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!
        let kernel = c.ints("kernel_size") ?? [1]
        let y: Tensor
        switch c.string("kind") {
        case "max":
            y = Functional.maxPool2d(
                x, kernel: kernel, stride: c.ints("stride"), padding: c.ints("padding") ?? [0],
                dilation: c.ints("dilation") ?? [1], ceilMode: c.bool("ceil_mode", default: false))
        case "avg":
            y = Functional.avgPool2d(
                x, kernel: kernel, stride: c.ints("stride"), padding: c.ints("padding") ?? [0],
                ceilMode: c.bool("ceil_mode", default: false),
                countIncludePad: c.bool("count_include_pad", default: true))
        case "adaptive_avg": y = Functional.adaptiveAvgPool2d(x, outputSize: c.ints("output_size")!)
        case "adaptive_max": y = Functional.adaptiveMaxPool2d(x, outputSize: c.ints("output_size")!)
        case let kind:
            XCTFail("\(label): unknown pooling '\(kind ?? "")'")
            return 0
        }
        return compare(c, label, output: y, inputs: [("input", x)])
    }

    static func normalization(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!, w = leaf(c, "weight"), b = leaf(c, "bias")
        let eps = Float(c.double("eps", default: 1e-5))
        var n = 0
        let y: Tensor
        switch c.string("kind") {
        case "batch_norm":
            let rm = c.tensor("running_mean"), rv = c.tensor("running_var")
            y = Functional.batchNorm(
                x, runningMean: rm, runningVar: rv, weight: w, bias: b,
                training: c.bool("training", default: true),
                momentum: Float(c.double("momentum", default: 0.1)), eps: eps)
            if let rm, let expected = c.tensor("running_mean_after") {
                assertClose(rm, expected, "\(label) running_mean"); n += 1
            }
            if let rv, let expected = c.tensor("running_var_after") {
                assertClose(rv, expected, "\(label) running_var"); n += 1
            }
        case "group_norm":
            y = Functional.groupNorm(x, groups: c.int("num_groups", default: 1), weight: w, bias: b, eps: eps)
        case "layer_norm":
            let k = c.int("normalized_dims", default: 1)
            y = Functional.layerNorm(x, normalizedShape: Array(x.shape.suffix(k)), weight: w, bias: b, eps: eps)
        case let kind:
            XCTFail("\(label): unknown norm '\(kind ?? "")'")
            return 0
        }
        return n
            + compare(
                c, label, output: y,
                inputs: [("input", x)] + (w.map { [("weight", $0)] } ?? [])
                    + (b.map { [("bias", $0)] } ?? []))
    }

    static func resample(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!
        let mode = c.string("mode") ?? ""
        if mode == "linear" {
            let w = leaf(c, "weight")!, b = leaf(c, "bias")
            let y = Functional.linear(x, weight: w, bias: b)
            return compare(
                c, label, output: y, inputs: [("input", x), ("weight", w)] + (b.map { [("bias", $0)] } ?? []))
        }
        let size: [Int]
        if let s = c.ints("size") {
            size = s.count == 1 ? [s[0], s[0]] : s
        } else {
            let scale = c.double("scale", default: 1)
            size = [Int((Double(x.shape[2]) * scale).rounded(.down)), Int((Double(x.shape[3]) * scale).rounded(.down))]
        }
        let y: Tensor
        switch mode {
        case "bilinear":
            y = Functional.resizeBilinear(x, size: size, alignCorners: c.bool("align_corners", default: false))
        case "nearest": y = Functional.resizeNearest(x, size: size)
        default:
            XCTFail("\(label): unknown resample mode '\(mode)'")
            return 0
        }
        return compare(c, label, output: y, inputs: [("input", x)])
    }

    static func loss(_ c: FixtureCase, _ label: String) throws -> Int {
        let logits = leaf(c, "logits")!, target = c.tensor("target")!
        let value: Tensor
        switch c.string("kind") {
        case "cross_entropy":
            value = Functional.crossEntropy(
                logits, target: target, classWeights: c.doubles("class_weights")?.map { Float($0) },
                ignoreIndex: c.ints("ignore_index")?.first ?? -100,
                labelSmoothing: Float(c.double("label_smoothing", default: 0)))
        case "bce_with_logits": value = Functional.binaryCrossEntropyWithLogits(logits, target: target)
        case "dice": value = Functional.diceLoss(logits, target: target, smooth: Float(c.double("smooth", default: 1)))
        case let kind:
            XCTFail("\(label): unknown loss '\(kind ?? "")'")
            return 0
        }
        var n = 0
        if let expected = c.tensor("loss") {
            assertClose(value.reshaped(expected.shape), expected, "\(label) loss"); n += 1
        }
        if let expected = c.tensor("grad_logits") {
            value.backward()
            if let g = logits.grad {
                assertClose(g, expected, "\(label) grad_logits"); n += 1
            } else {
                XCTFail("\(label): no gradient for logits")
            }
        }
        return n
    }
}
