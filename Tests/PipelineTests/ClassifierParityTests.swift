import Foundation
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

/// LeNet-5 and ResNet-18 training steps and FGSM against PyTorch (`Fixtures/classifier-references.safetensors`,
/// made by `Fixtures/make_classifier_references.py` in a throw-away virtualenv; the script's docstring says what
/// each tensor is). `TESSERA_CLASSIFIER_REFERENCES` names another file of the same schema (e.g. one made with
/// `--resnet-width 64`, torchvision's full ResNet-18, too large to commit).
final class ClassifierParityTests: XCTestCase {
    let file =
        ProcessInfo.processInfo.environment["TESSERA_CLASSIFIER_REFERENCES"].map { URL(fileURLWithPath: $0) }
        ?? SharedFixtures.packageRoot.appendingPathComponent(
            "Tests/PipelineTests/Fixtures/classifier-references.safetensors")

    /// (2u - 1) * scale, u = ((i * 2654435761 + (t + 1) * 97531) mod 2^32) / 2^32: the script's `formula`.
    static func formula(_ count: Int, tensor t: Int, scale: Double) -> [Float] {
        (0..<count).map { i in
            let h = (UInt64(i) &* 2_654_435_761 &+ UInt64((t + 1) * 97531)) & 0xFFFF_FFFF
            return Float((2 * (Double(h) / 4_294_967_296) - 1) * scale)
        }
    }

    /// Every parameter of `model` (sorted by name) from the formula, as the script's `fill`.
    static func fill(_ model: Module) {
        for (t, (name, p)) in model.namedParameters().sorted(by: { $0.name < $1.name }).enumerated() {
            let values: [Float]
            if name.hasSuffix("bias") {
                values = formula(p.count, tensor: t, scale: 0.1)
            } else if p.rank == 1 {
                values = formula(p.count, tensor: t, scale: 0.2).map { 1 + $0 }
            } else {
                values = formula(p.count, tensor: t, scale: (3.0 / Double(p.count / p.shape[0])).squareRoot())
            }
            p.assign(Tensor(values, shape: p.shape))
        }
    }

    /// One training step's loss and every parameter's gradient against PyTorch's float64 ones: relative error
    /// (norm of the difference over the norm of the reference) within 1e-4 for each.
    func checkTrainStep(_ prefix: String, _ model: Module, input shape: [Int], classes: Int) throws {
        let refs = try SafeTensorsFile(contentsOf: file)
        Self.fill(model)
        model.train()
        let x = Tensor(Self.formula(shape.reduce(1, *), tensor: 1000, scale: 1.5), shape: shape)
        let y = Tensor((0..<shape[0]).map { Float($0 % classes) }, shape: [shape[0]])
        let loss = Functional.crossEntropy(model(x), target: y)
        loss.backward()
        let refLoss = try refs.tensor("\(prefix).loss").scalars[0]
        XCTAssertEqual(loss.scalars[0], refLoss, accuracy: 1e-4 * abs(refLoss), "\(prefix) loss")
        var worst = (name: "", error: 0.0), checked = 0
        for (name, p) in model.namedParameters() {
            let reference = try refs.tensor("\(prefix).grad.\(name)").scalars
            let grad = try XCTUnwrap(p.grad, "\(prefix) \(name): no gradient").contiguous().scalars
            XCTAssertEqual(grad.count, reference.count, name)
            let diff = zip(grad, reference).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let norm = reference.reduce(0.0) { $0 + Double($1) * Double($1) }
            let error = (diff / max(norm, 1e-30)).squareRoot()
            XCTAssertLessThanOrEqual(error, 1e-4, "\(prefix) grad \(name): relative error \(error)")
            if error > worst.error { worst = (name, error) }
            checked += 1
        }
        XCTAssertEqual(checked, refs.names.filter { $0.hasPrefix("\(prefix).grad.") }.count, "every gradient checked")
        print("\(prefix): loss \(loss.scalars[0]) (PyTorch \(refLoss)); \(checked) gradients, worst \(worst)")
    }

    func testLeNet5TrainStepMatchesPyTorch() throws {
        var g = RandomGenerator(seed: 0)
        try checkTrainStep("lenet5", LeNet5(classes: 4, generator: &g), input: [8, 1, 32, 32], classes: 4)
    }

    func testResNet18TrainStepMatchesPyTorch() throws {
        var g = RandomGenerator(seed: 0)
        // The base width the fixture was made with (16 committed; 64 is torchvision's own).
        let width = try SafeTensorsFile(contentsOf: file).tensor("resnet18.grad.conv1.weight").shape[0]
        let model = ResNet(ResNetConfig(depth: 18, inChannels: 3, classes: 4, width: width), generator: &g)
        try checkTrainStep("resnet18", model, input: [4, 3, 64, 64], classes: 4)
    }

    /// FGSM accuracy on the trained LeNet-5 falls with epsilon and equals PyTorch's within 1% at every epsilon.
    func testFGSMAccuracyMatchesPyTorch() throws {
        let refs = try SafeTensorsFile(contentsOf: file)
        var g = RandomGenerator(seed: 0)
        let model = LeNet5(classes: 4, generator: &g)
        var state: [String: Tensor] = [:]
        for name in refs.names where name.hasPrefix("fgsm.weight.") {
            state[String(name.dropFirst("fgsm.weight.".count))] = try refs.tensor(name)
        }
        try model.load(state)
        model.eval()
        let images = try refs.tensor("fgsm.images"), labels = try refs.tensor("fgsm.labels")
        let mean = try refs.tensor("fgsm.mean").scalars, std = try refs.tensor("fgsm.std").scalars
        let epsilons = try refs.tensor("fgsm.epsilons").scalars, expected = try refs.tensor("fgsm.accuracy").scalars
        var previous = 1.0
        for (eps, reference) in zip(epsilons, expected) {
            let attack = FGSM(epsilon: Double(eps), mean: mean, std: std)
            let perturbed = attack.perturb(images, target: labels, model: model)
            let predicted = withNoGrad { model(perturbed) }.argmax(axis: 1).scalars
            let accuracy = Double(zip(predicted, labels.scalars).filter { $0 == $1 }.count) / Double(labels.count)
            print(String(format: "FGSM eps %.2f: accuracy %.4f, PyTorch %.4f", eps, accuracy, reference))
            XCTAssertEqual(accuracy, Double(reference), accuracy: 0.01, "eps \(eps)")
            XCTAssertLessThanOrEqual(accuracy, previous, "accuracy rises at eps \(eps)")
            previous = accuracy
        }
        XCTAssertGreaterThan(expected.first ?? 0, 0.9, "the fixture's model is trained")
        XCTAssertLessThan(expected.last ?? 1, 0.25, "the strongest attack beats chance")
    }
}
