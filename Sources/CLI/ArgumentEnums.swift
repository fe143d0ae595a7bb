import ArgumentParser
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN

// The closed sets the options take: argument-parser reads them by raw value and lists `allCases` in the help, so
// the names are declared once, in the library enum (the pipeline schema validates against the same cases).
extension Architecture: ExpressibleByArgument {}
extension MaskEncoding: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}
extension SegmentationLoss: ExpressibleByArgument {}
extension ValidationMetric: ExpressibleByArgument {}
extension NetworkTask: ExpressibleByArgument {}
extension UNetConfig.Upsampling: ExpressibleByArgument {}
extension UNetConfig.ConvPadding: ExpressibleByArgument {}
extension TiledInference.Blend: ExpressibleByArgument {}
extension OverlayFormat: ExpressibleByArgument {}
extension CAMMethod: ExpressibleByArgument {}
extension CAMMapFormat: ExpressibleByArgument {}
extension LIMEFill: ExpressibleByArgument {}
extension Colormap: ExpressibleByArgument {}
extension SegmentOutput: ExpressibleByArgument {}
extension ExplainOutput: ExpressibleByArgument {}
extension OutputFileFormat: ExpressibleByArgument {}
extension TIFFPages: ExpressibleByArgument {}
