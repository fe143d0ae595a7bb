import Foundation
import TesseraCheckpoint
import TesseraTraining
import TestSupport

/// A width-8 U-Net trained for 40 steps on the ISBI slices by `TrainRun`, once per test run, for the tests that
/// need a model that predicts both classes.
enum ISBICheckpoint {
    static var folder: URL { SharedFixtures.sharedRoot.appendingPathComponent("data/isbi2012") }

    /// The checkpoint's `last.safetensors`; the error (or skip) of `SharedFixtures.require` when ISBI is absent.
    static let trained: Result<URL, Error> = Result {
        let isbi = try SharedFixtures.require(folder)
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-isbi-\(UUID().uuidString)")
        var c = TrainingConfig(
            images: isbi.appendingPathComponent("images").path, masks: isbi.appendingPathComponent("masks").path)
        c.width = 8
        c.steps = 40
        c.validateEvery = 40
        let trainer = TrainRun(config: c, runDirectory: run)
        trainer.log = { _ in }
        _ = try trainer.run()
        return run.appendingPathComponent("last.safetensors")
    }
}
