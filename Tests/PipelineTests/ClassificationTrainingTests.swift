import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraRun
import TesseraTraining
import TestSupport
import XCTest

/// Classifiers through the user's verbs on the committed shapes (`samples/shapes`, 4 classes): a pipeline trains
/// LeNet-5, classifies, evaluates under FGSM and explains; a stopped run resumes to the same weights; a frozen
/// encoder keeps its pretrained weights; settings that do not fit a classifier are refused.
final class ClassificationTrainingTests: XCTestCase {
    let shapes = SharedFixtures.packageRoot.appendingPathComponent("samples/shapes").path

    func temporary(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(name)-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testPipelineTrainsClassifiesEvaluatesAttacksAndExplains() throws {
        let out = temporary("classify-run")
        let yaml = """
            name: shapes
            ingest: {images: \(shapes)/train, val_split: 0.2}
            model: {task: classify, arch: lenet5}
            train: {steps: 600, batch: 32, lr: 0.003, schedule: cosine, seed: 0}
            classify: {inputs: [\(shapes)/test], recursive: true, top_k: 2}
            eval: {images: \(shapes)/test, fgsm: [0.01, 0.05, 0.2]}
            explain: {inputs: [\(shapes)/test/disc/test001.png, \(shapes)/test/cross/test007.png]}
            """
        let run = PipelineRun(
            config: try PipelineReader(file: "shapes.yaml").parse(yaml, name: "shapes"), runDirectory: out)
        run.log = { _ in }
        let summary = try run.run()
        XCTAssertEqual(summary.failures, 0)
        let evaluation = try XCTUnwrap(summary.evaluation)
        // Chance: the largest test class's share (the trivial baseline a classifier must beat).
        let counts = evaluation.scores.matrix.counts, n = evaluation.classNames.count
        let largest = Double((0..<n).map { t in (0..<n).reduce(0) { $0 + counts[t * n + $1] } }.max() ?? 0)
        let chance = largest / Double(evaluation.images)
        print("LeNet-5 on the shapes test set: accuracy \(evaluation.scores.accuracy), chance \(chance)")
        XCTAssertEqual(evaluation.images, 200)
        XCTAssertGreaterThan(evaluation.scores.accuracy, 0.9)
        XCTAssertLessThan(chance, 0.3)
        let attacked = evaluation.attacked.map(\.scores.accuracy)
        XCTAssertEqual(attacked, attacked.sorted(by: >), "accuracy falls with epsilon: \(attacked)")
        XCTAssertLessThan(attacked.last ?? 1, chance, "the strongest attack beats the model")
        // classify: a result per image and a report row each.
        let records = try XCTUnwrap(summary.classify)
        XCTAssertEqual(records.count, 200)
        XCTAssertEqual(records.filter { $0.top.count == 2 }.count, 200)
        let correct = records.filter { $0.path.hasPrefix(($0.top.first?.class ?? "?") + "/") }.count
        XCTAssertEqual(Double(correct) / 200, evaluation.scores.accuracy, accuracy: 1e-9, "classify agrees with eval")
        let csv = try String(contentsOf: run.classifyDirectory.appendingPathComponent("report.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("path,status,class_1,probability_1,class_2,probability_2"))
        XCTAssertEqual(try Data(contentsOf: run.evalDirectory.appendingPathComponent("confusion.csv")).isEmpty, false)
        XCTAssertEqual(summary.explain?.records.filter { $0.status == .done }.count, 2)
        let html = try String(contentsOf: run.reportFile, encoding: .utf8)
        XCTAssertTrue(html.contains("Confusion matrix") && html.contains("Accuracy under FGSM"))
    }

    func config(_ model: Architecture = .lenet5) -> TrainingConfig {
        var c = TrainingConfig(images: shapes + "/train", masks: "")
        c.task = .classify
        c.model = model
        c.steps = 40
        c.batch = 16
        c.validateEvery = 20
        return c
    }

    func testStoppedClassifierRunResumesToTheSameWeights() throws {
        let straight = temporary("straight"), resumed = temporary("resumed")
        _ = try TrainRun(config: config(), runDirectory: straight).run()
        let first = TrainRun(config: config(), runDirectory: resumed)
        first.stopAfterSteps = 30
        XCTAssertEqual(try first.run().steps, 30)
        let second = TrainRun(config: try TrainRun.savedConfig(in: resumed), runDirectory: resumed)
        XCTAssertEqual(try second.run().steps, 40)
        let a = try Checkpoint.read(TrainingRunFolder(straight).last),
            b = try Checkpoint.read(TrainingRunFolder(resumed).last)
        for (name, tensor) in a.weights { XCTAssertEqual(tensor.scalars, b.weights[name]?.scalars, name) }
        XCTAssertEqual(
            try Checkpoint.loadClassifier(TrainingRunFolder(resumed).best).info.classNames,
            ShapeSample.Kind.allCases.map(\.name).sorted())
    }

    func testFrozenEncoderKeepsThePretrainedWeights() throws {
        // A ResNet-18's weights in torchvision's names (a Tessera checkpoint holds them so), 10 classes: fc is new.
        var g = RandomGenerator(seed: 5)
        let source = ResNet(ResNetConfig(depth: 18, inChannels: 3, classes: 10), generator: &g)
        let weights = temporary("weights").appendingPathExtension("safetensors")
        try SafeTensorsFile.write(source.stateDict(), to: weights)
        var c = config(.resnet18)
        c.crop = 32
        c.channels = 3
        c.steps = 4
        c.encoderWeights = weights.path
        c.freezeEncoder = true
        let dir = temporary("frozen")
        _ = try TrainRun(config: c, runDirectory: dir).run()
        let trained = try Checkpoint.read(TrainingRunFolder(dir).last).weights
        for (name, tensor) in source.namedParameters() where !name.hasPrefix("fc.") {
            XCTAssertEqual(trained[name]?.scalars, tensor.scalars, "\(name) is frozen")
        }
        XCTAssertEqual(trained["fc.weight"]?.shape, [4, 512])
        // Without freezing, the encoder learns too.
        c.freezeEncoder = nil
        let free = temporary("free")
        _ = try TrainRun(config: c, runDirectory: free).run()
        let learned = try Checkpoint.read(TrainingRunFolder(free).last).weights
        XCTAssertNotEqual(
            learned["layer1.0.conv1.weight"]?.scalars, source.layers[0].namedParameters().first?.tensor.scalars)
    }

    func testSettingsThatDoNotFitAClassifierAreRefused() {
        var withMasks = config()
        withMasks.masks = shapes
        var wrongCrop = config()
        wrongCrop.crop = 64
        var segmenter = config()
        segmenter.model = .unet
        var dice = config()
        dice.bestMetric = .meanDice
        var frozen = config()
        frozen.freezeEncoder = true
        for (c, expected) in [
            (withMasks, "--masks"), (wrongCrop, "LeNet-5 takes 32x32"), (segmenter, "does not classify"),
            (dice, "does not score classification"), (frozen, "--freeze-encoder needs")
        ] {
            XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        var classifierForSegmentation = TrainingConfig(images: shapes, masks: shapes)
        classifierForSegmentation.model = .lenet5
        XCTAssertThrowsError(try classifierForSegmentation.validate()) {
            XCTAssertTrue("\($0)".contains("does not segment"), "\($0)")
        }
    }
}
