import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

/// Every `<arch>.weights.safetensors` + `<arch>.reference.safetensors` pair in the torch fixture folder: the
/// torchvision weights load by name and reproduce the eval logits, the train-mode loss and the listed gradients.
final class ResNetParityTests: XCTestCase {
    func testEveryResNetFixturePairMatchesPyTorch() throws {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        let pairs = try ResNetFixture.all(in: folder)
        XCTAssertFalse(pairs.isEmpty, "no <arch>.weights/.reference pairs in \(folder.path)")
        for fixture in pairs {
            let model = try fixture.model()
            let ref = fixture.reference
            model.eval()
            let logits = withNoGrad { model(try! ref.tensor("eval.input")) }
            assertClose(logits, try ref.tensor("eval.logits"), "\(fixture.arch) eval.logits")

            model.train()
            let x = try ref.tensor("train.input"), target = try ref.tensor("train.target")
            let loss = Functional.crossEntropy(model(x), target: target)
            assertClose(loss.reshaped([1]), try ref.tensor("train.loss"), "\(fixture.arch) train.loss")
            loss.backward()
            let ours = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor.grad!) })
            let checked = fixture.checkedGradients
            XCTAssertFalse(checked.isEmpty)
            let expected = try Dictionary(
                uniqueKeysWithValues: checked.map { ($0, try ref.tensor("train.grad.\($0)")) })
            if Self.mismatches(ours, expected).isEmpty { continue }
            // A ReLU whose float32 input lies within rounding of zero has no well-defined side: PyTorch's sum and
            // ours, added in another order, may put it on either, and every gradient upstream of it moves (by about
            // 1% of the tensor's norm for the one unit of ResNet-18, in layer3.0.bn1). Such units are found (any
            // number of them), each is given the side that explains PyTorch's gradients, and the gradients must
            // then match element by element: a wrong derivative cannot be explained away like this (see
            // `testTheGradientCheckRejectsRealBugs`).
            let probe = ReLUDecisions(model: model)
            let plain = probe.gradients(x, target, flips: [])
            for name in checked {
                assertClose(
                    plain.grads[name]!, ours[name]!, atol: 1e-6, rtol: 1e-5, "\(fixture.arch) explicit forward \(name)")
            }
            let (flips, remaining) = probe.explain(expected, x: x, target: target)
            if remaining.isEmpty {
                print(
                    "\(fixture.arch): gradients match PyTorch once these \(flips.count) of \(plain.ambiguous.count) ReLU "
                        + "inputs within rounding of zero take its side: "
                        + flips.map(\.description).joined(separator: ", "))
            } else {
                let relative = checked.map { name in
                    String(format: "%@ %.2e", name, Self.relativeError(ours[name]!, expected[name]!))
                }
                XCTFail(
                    "\(fixture.arch): gradients differ from PyTorch (\(plain.ambiguous.count) ambiguous ReLUs: "
                        + "\(plain.ambiguous.prefix(20))):\n" + remaining.joined(separator: "\n")
                        + "\n||ours - PyTorch|| / ||PyTorch|| per tensor: " + relative.joined(separator: ", "))
            }
        }
    }

    /// ||a - b|| / ||b|| in float64 (for the failure message).
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        let x = a.scalars, y = b.scalars
        guard x.count == y.count else { return .infinity }
        var diff = 0.0, norm = 0.0
        for i in x.indices {
            diff += (Double(x[i]) - Double(y[i])) * (Double(x[i]) - Double(y[i]))
            norm += Double(y[i]) * Double(y[i])
        }
        return (diff / max(norm, 1e-300)).squareRoot()
    }

    /// The gradients (by name) that differ from `expected` beyond |a - b| <= 1e-4 + 1e-3 |b|.
    static func mismatches(_ grads: [String: Tensor], _ expected: [String: Tensor]) -> [String] {
        expected.keys.sorted().compactMap { name in
            guard let g = grads[name] else { return "\(name): no gradient" }
            return closeness(g, expected[name]!, atol: 1e-4, rtol: 1e-3).map { "\(name): \($0)" }
        }
    }

    /// The search for ReLU sides cannot explain away a real bug: the gradients of a network whose ReLUs leak a
    /// tenth of negative inputs (a wrong derivative everywhere) still differ from PyTorch's after it, and so do
    /// the correct ones with one tensor off by 1%.
    func testTheGradientCheckRejectsRealBugs() throws {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        guard let fixture = try ResNetFixture.all(in: folder).first else {
            return XCTFail("no ResNet fixture in \(folder.path)")
        }
        let model = try fixture.model()
        model.train()
        let ref = fixture.reference
        let x = try ref.tensor("train.input"), target = try ref.tensor("train.target")
        let expected = try Dictionary(
            uniqueKeysWithValues: fixture.checkedGradients.map { ($0, try ref.tensor("train.grad.\($0)")) })
        let leaky = ReLUDecisions(model: model, negativeSlope: 0.1)
        XCTAssertFalse(leaky.explain(expected, x: x, target: target).remaining.isEmpty, "a leaky ReLU passed")
        var scaled = expected
        let name = fixture.checkedGradients[0]
        scaled[name] = expected[name]! * Tensor([1.01], shape: [1])
        XCTAssertFalse(
            ReLUDecisions(model: model).explain(scaled, x: x, target: target).remaining.isEmpty,
            "a 1% error in \(name) passed")
    }
}

/// Re-runs a ResNet's train-mode forward with explicit ReLU masks, so units whose input is within float32
/// rounding of zero can be listed and decided the other way.
struct ReLUDecisions {
    /// A ReLU input, identified by its layer and index (its value moves slightly when another unit flips).
    struct Unit: Hashable, CustomStringConvertible {
        let layer: String, index: Int, value: Float
        var description: String { "\(layer)[\(index)]=\(value)" }
        static func == (a: Unit, b: Unit) -> Bool { a.layer == b.layer && a.index == b.index }
        func hash(into hasher: inout Hasher) {
            hasher.combine(layer)
            hasher.combine(index)
        }
    }
    let model: ResNet
    /// Slope of the negative side (0: ReLU; other values emulate a bug for `testTheGradientCheckRejectsRealBugs`).
    var negativeSlope: Float = 0
    /// Inputs closer to zero than this are ambiguous (float32 sums of a few thousand products).
    static let band: Float = 1e-5

    /// Gives each ambiguous unit the side that brings the gradients closer to `expected` (a flip's effect on the
    /// gradients is its own, nearly independent of the others', so two passes over the units decide them all, two
    /// forward and backward passes per unit and no cap on their number), then compares the gradients of that
    /// choice element by element. Returns the flipped units and the mismatches left.
    func explain(_ expected: [String: Tensor], x: Tensor, target: Tensor) -> (flips: [Unit], remaining: [String]) {
        func distance(_ grads: [String: Tensor]) -> Double {
            expected.reduce(0) { total, item in
                guard let g = grads[item.key] else { return .infinity }
                let a = g.scalars, b = item.value.scalars
                guard a.count == b.count else { return .infinity }
                return total + zip(a, b).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            }
        }
        let plain = gradients(x, target, flips: [])
        var chosen: Set<Unit> = [], best = distance(plain.grads)
        // Units that explain the most first (a unit with no effect of its own can look useful beside a real one).
        let alone = plain.ambiguous.map { ($0, distance(gradients(x, target, flips: [$0]).grads)) }
        for (unit, _) in alone.sorted(by: { $0.1 < $1.1 }) {
            let trial = distance(gradients(x, target, flips: chosen.union([unit])).grads)
            if trial < best { chosen.insert(unit); best = trial }
        }
        let final = gradients(x, target, flips: chosen).grads
        return (plain.ambiguous.filter(chosen.contains), ResNetParityTests.mismatches(final, expected))
    }

    func gradients(_ x: Tensor, _ target: Tensor, flips: Set<Unit>) -> (grads: [String: Tensor], ambiguous: [Unit]) {
        for p in model.parameters { p.grad = nil }
        var ambiguous: [Unit] = []
        func relu(_ name: String, _ t: Tensor) -> Tensor {
            let v = t.scalars
            var mask = v.map { $0 > 0 ? Float(1) : negativeSlope }
            for (i, value) in v.enumerated() where abs(value) < Self.band {
                let unit = Unit(layer: name, index: i, value: value)
                ambiguous.append(unit)
                if flips.contains(unit) { mask[i] = mask[i] == 1 ? negativeSlope : 1 }
            }
            return t * Tensor(mask, shape: t.shape)
        }
        var y = relu("bn1", model.bn1(model.conv1(x)))
        y = Functional.maxPool2d(y, kernel: [3, 3], stride: [2, 2], padding: [1])
        for (l, layer) in model.layers.enumerated() {
            for (b, module) in layer.layers.enumerated() {
                let block = module as! ResidualBlock
                var h = y
                for i in block.convs.indices {
                    h = block.norms[i](block.convs[i](h))
                    if i < block.convs.count - 1 { h = relu("layer\(l + 1).\(b).bn\(i + 1)", h) }
                }
                y = relu("layer\(l + 1).\(b)", h + (block.downsample?(y) ?? y))
            }
        }
        let pooled = Functional.globalAvgPool2d(y)
        let logits = model.fc!(pooled.reshaped([pooled.shape[0], pooled.shape[1]]))
        Functional.crossEntropy(logits, target: target).backward()
        let grads = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor.grad!) })
        return (grads, ambiguous)
    }
}

/// A torchvision ResNet fixture pair.
struct ResNetFixture {
    let arch: String
    let weights: SafeTensorsFile
    let reference: SafeTensorsFile

    static func all(in folder: URL) throws -> [ResNetFixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        return try names.filter { $0.hasSuffix(".weights.safetensors") }.sorted().compactMap { name in
            let arch = String(name.dropLast(".weights.safetensors".count))
            let refURL = folder.appendingPathComponent("\(arch).reference.safetensors")
            guard arch.hasPrefix("resnet"), FileManager.default.fileExists(atPath: refURL.path) else { return nil }
            return ResNetFixture(
                arch: arch, weights: try SafeTensorsFile(contentsOf: folder.appendingPathComponent(name)),
                reference: try SafeTensorsFile(contentsOf: refURL))
        }
    }

    /// The ResNet the pair describes, with the file's weights loaded strictly.
    func model() throws -> ResNet {
        let depth = try XCTUnwrap(Int(arch.dropFirst("resnet".count)), "unknown arch \(arch)")
        let classes = Int(reference.metadata["num_classes"] ?? weights.metadata["num_classes"] ?? "") ?? 1000
        var g = RandomGenerator(seed: 0)
        let model = ResNet(ResNetConfig(depth: depth, inChannels: 3, classes: classes), generator: &g)
        var state: [String: Tensor] = [:]
        for name in weights.names { state[name] = try weights.tensor(name) }
        try model.load(state)
        return model
    }

    /// Parameter names listed in the reference's `checked_grads`.
    var checkedGradients: [String] {
        guard let text = reference.metadata["checked_grads"], let data = text.data(using: .utf8),
            let list = try? JSONSerialization.jsonObject(with: data) as? [String]
        else { return [] }
        return list
    }
}
